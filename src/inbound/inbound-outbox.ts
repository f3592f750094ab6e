import type { EventBus } from '../bus/bus.ts';
import { encode, inboundRequestMessageV1, subjects, type InboundRequestMessage } from '../bus/contracts.ts';
import { firstIdAt } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import type { Outbox } from '../util/outbox-relay.ts';
import { InboundOutboxEntity, InboundRequestEntity, type InboundRequest } from './inbound-request.entity.ts';

/** A stored request as live tails see it: everything but the body. */
export type InboundRequestSummary = Omit<InboundRequest, 'body'>;

export function toMessage(request: InboundRequestSummary): InboundRequestMessage {
  return {
    v: 1,
    id: request.id,
    tenantId: request.tenantId,
    sourceId: request.sourceId,
    method: request.method,
    path: request.path,
    query: request.query ?? null,
    headers: request.headers,
    contentType: request.contentType ?? null,
    clientIp: request.clientIp ?? null,
    bodyBytes: request.bodyBytes,
    bodySha256: request.bodySha256 ?? null,
    outcome: request.outcome,
    statusCode: request.statusCode,
    reason: request.reason ?? null,
    verification: request.verification,
    verificationDetail: request.verificationDetail ?? null,
    parseStatus: request.parseStatus,
    parseError: request.parseError ?? null,
    idempotencyKey: request.idempotencyKey ?? null,
    duplicateOf: request.duplicateOf ?? null,
    replayOf: request.replayOf ?? null,
    eventId: request.eventId ?? null,
    createdAt: request.createdAt.toISOString(),
  };
}

/**
 * Stored inbound requests not yet announced to live tails (`inbound_outbox`, written with the
 * request), published to `<prefix>.inbound.<tenant>.<source>` with the request id as message id.
 */
export function inboundOutbox(orm: Orm, bus: EventBus, prefix: string): Outbox<InboundRequestSummary> {
  const subject = subjects(prefix);
  return {
    what: 'an inbound request announcement',
    idOf: (request) => request.id,
    async due(before, limit) {
      const em = orm.em.fork();
      const entries = await em.find(
        InboundOutboxEntity,
        { requestId: { $lt: firstIdAt(before) } },
        { orderBy: { requestId: 'asc' }, limit },
      );
      if (entries.length === 0) return { items: [], gone: [] };
      // The relay serves every tenant: it reads by id with the tenant filter off.
      const items = await em.find(
        InboundRequestEntity,
        { id: { $in: entries.map((entry) => entry.requestId) } },
        { filters: false, orderBy: { id: 'asc' } },
      );
      const found = new Set(items.map((item) => item.id));
      return { items, gone: entries.map((entry) => entry.requestId).filter((id) => !found.has(id)) };
    },
    async send(request) {
      await bus.publish(
        subject.inbound(request.tenantId, request.sourceId),
        encode(inboundRequestMessageV1, toMessage(request)),
        { msgId: `inbound:${request.id}` },
      );
    },
    async remove(ids) {
      await orm.em.fork().nativeDelete(InboundOutboxEntity, { requestId: { $in: ids } });
    },
    depth: () => orm.em.fork().count(InboundOutboxEntity, {}, { filters: false }),
  };
}
