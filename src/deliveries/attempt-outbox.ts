import type { EventBus } from '../bus/bus.ts';
import { attemptMessageV1, encode, subjects } from '../bus/contracts.ts';
import type { Orm } from '../db/orm.ts';
import type { Outbox } from '../util/outbox-relay.ts';
import { AttemptOutboxEntity, DeliveryAttemptEntity, type DeliveryAttempt } from './delivery.entity.ts';

/**
 * Recorded attempts not yet announced to live consoles (`attempt_outbox`, written in the attempt's
 * transaction), published to `<prefix>.attempt.<tenant>.<webhook>`. The message id is the attempt's
 * id, so a repeat within the attempts stream's duplicate window is dropped.
 */
export function attemptOutbox(orm: Orm, bus: EventBus, prefix: string): Outbox<DeliveryAttempt> {
  const subject = subjects(prefix);
  return {
    what: 'an attempt announcement',
    idOf: (attempt) => attempt.id,
    async due(before, limit) {
      const em = orm.em.fork();
      const entries = await em.find(
        AttemptOutboxEntity,
        { createdAt: { $lt: before } },
        { orderBy: { createdAt: 'asc' }, limit },
      );
      if (entries.length === 0) return { items: [], gone: [] };
      // The relay serves every tenant: it reads by id with the tenant filter off.
      const items = await em.find(
        DeliveryAttemptEntity,
        { id: { $in: entries.map((entry) => entry.attemptId) } },
        { filters: false, orderBy: { createdAt: 'asc' } },
      );
      // An entry whose attempt was pruned meanwhile has nothing left to announce.
      const found = new Set(items.map((item) => item.id));
      return { items, gone: entries.map((entry) => entry.attemptId).filter((id) => !found.has(id)) };
    },
    async send(attempt) {
      const message = {
        v: 1 as const,
        ...attempt,
        statusCode: attempt.statusCode ?? null,
        response: attempt.response ?? null,
        errorClass: attempt.errorClass ?? null,
        error: attempt.error ?? null,
        createdAt: attempt.createdAt.toISOString(),
      };
      await bus.publish(
        subject.attempt(attempt.tenantId, attempt.webhookId),
        encode(attemptMessageV1, message),
        {
          msgId: `attempt:${attempt.id}`,
        },
      );
    },
    async remove(ids) {
      await orm.em.fork().nativeDelete(AttemptOutboxEntity, { attemptId: { $in: ids } });
    },
    depth: () => orm.em.fork().count(AttemptOutboxEntity, {}, { filters: false }),
  };
}
