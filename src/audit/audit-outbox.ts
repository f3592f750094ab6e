import type { EventBus } from '../bus/bus.ts';
import { auditMessageV1, encode, subjects } from '../bus/contracts.ts';
import type { Orm } from '../db/orm.ts';
import type { Outbox } from '../util/outbox-relay.ts';
import { AuditLogEntity, AuditOutboxEntity, type AuditLog } from './audit-log.entity.ts';

/**
 * Committed audit entries not yet on the bus (`audit_outbox`, written in the entry's transaction),
 * published to `<prefix>.audit.<tenant>` in sequence order. Message ids are
 * `audit:<tenant>:<sequence>`, so a repeat within the duplicate window is dropped by the stream.
 */
export function auditOutbox(orm: Orm, bus: EventBus, prefix: string): Outbox<AuditLog> {
  const subject = subjects(prefix);
  return {
    what: 'an audit entry',
    idOf: (entry) => entry.id,
    async due(before, limit) {
      const em = orm.em.fork();
      const entries = await em.find(
        AuditOutboxEntity,
        { createdAt: { $lt: before } },
        { orderBy: { createdAt: 'asc' }, limit },
      );
      if (entries.length === 0) return { items: [], gone: [] };
      // The relay serves every tenant: it reads by id with the tenant filter off.
      const items = await em.find(
        AuditLogEntity,
        { id: { $in: entries.map((entry) => entry.auditLogId) } },
        { filters: false, orderBy: { tenantId: 'asc', sequence: 'asc' } },
      );
      return { items, gone: [] };
    },
    async send(entry) {
      const message = {
        v: 1 as const,
        ...entry,
        related: entry.related ?? null,
        relationName: entry.relationName ?? null,
        relationId: entry.relationId ?? null,
        ip: entry.ip ?? null,
        userAgent: entry.userAgent ?? null,
        requestId: entry.requestId ?? null,
        createdAt: entry.createdAt.toISOString(),
      };
      await bus.publish(subject.audit(entry.tenantId), encode(auditMessageV1, message), {
        msgId: `audit:${entry.tenantId}:${entry.sequence}`,
      });
    },
    async remove(ids) {
      await orm.em.fork().nativeDelete(AuditOutboxEntity, { auditLogId: { $in: ids } });
    },
    depth: () => orm.em.fork().count(AuditOutboxEntity, {}, { filters: false }),
  };
}
