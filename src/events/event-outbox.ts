import { createHash } from 'node:crypto';
import { SpanKind } from '@opentelemetry/api';
import type { EventBus } from '../bus/bus.ts';
import { encode, eventMessageV1, subjects } from '../bus/contracts.ts';
import { firstIdAt } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import { inSpan, traceHeaders, traceparentContext } from '../tracing.ts';
import type { Outbox } from '../util/outbox-relay.ts';
import { EventEntity, EventOutboxEntity } from './event.entity.ts';
import { fromEntity, toMessage, type PublishedEvent } from './published-event.ts';

/**
 * The stream's message id of an event: a digest of tenant and idempotency key, so any key a client
 * sends makes a valid NATS header, and a republish of the same event is dropped by the stream.
 */
export const eventMessageId = (event: Pick<PublishedEvent, 'tenantId' | 'idempotencyKey'>): string =>
  createHash('sha256').update(`${event.tenantId}\n${event.idempotencyKey}`).digest('base64url');

/**
 * Events stored by publishEvent and not yet on the stream (`event_outbox`, written with the
 * event). Entries are found by their time-ordered event id; the relay serves every tenant, so it
 * reads with the tenant filter off.
 */
export function eventOutbox(orm: Orm, bus: EventBus, prefix: string): Outbox<PublishedEvent> {
  const subject = subjects(prefix);
  return {
    what: 'an event',
    idOf: (event) => event.id,
    async due(before, limit) {
      const em = orm.em.fork();
      const entries = await em.find(
        EventOutboxEntity,
        { eventId: { $lt: firstIdAt(before) } },
        { orderBy: { eventId: 'asc' }, limit },
      );
      if (entries.length === 0) return { items: [], gone: [] };
      const rows = await em.find(
        EventEntity,
        { id: { $in: entries.map((entry) => entry.eventId) } },
        { orderBy: { id: 'asc' }, filters: false },
      );
      // An entry whose event is gone (pruned after the stream got it, before its entry went) is done.
      const found = new Set(rows.map((row) => row.id));
      return {
        items: rows.map(fromEntity),
        gone: entries.map((entry) => entry.eventId).filter((id) => !found.has(id)),
      };
    },
    // In the trace the event was published in, whichever process relays it and however late.
    send: (event) =>
      inSpan(
        'event.relay',
        {
          kind: SpanKind.PRODUCER,
          parent: traceparentContext(event.traceparent),
          attributes: { 'herald.event.id': event.id, 'herald.event.type': event.type },
        },
        async () => {
          await bus.publish(
            subject.event(event.tenantId, event.type),
            encode(eventMessageV1, toMessage(event)),
            { msgId: eventMessageId(event), headers: traceHeaders() },
          );
        },
      ),
    async remove(ids) {
      await orm.em.fork().nativeDelete(EventOutboxEntity, { eventId: { $in: ids } });
    },
    depth: () => orm.em.fork().count(EventOutboxEntity, {}, { filters: false }),
  };
}
