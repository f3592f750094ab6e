import { LockMode } from '@mikro-orm/core';
import type { EventBus } from '../../bus/bus.ts';
import { auditMessageV1, encode, subjects } from '../../bus/contracts.ts';
import type { Orm } from '../../db/orm.ts';
import type { Logger } from '../../logger.ts';
import { pollLoop } from '../../util/poll-loop.ts';
import { AuditLogEntity, AuditOutboxEntity, type AuditLog } from './audit-log.entity.ts';

/**
 * Gets committed audit entries onto the bus (`<prefix>.audit.<tenant>`). Each entry has an outbox
 * row written in its transaction; `publish` runs right after the commit and deletes the rows it
 * published, the relay takes what is left after `relayAfterMs`. Message ids are
 * `audit:<tenant>:<sequence>`, so a repeat within the duplicate window is dropped by the stream.
 */
export class AuditPublisher {
  private readonly orm: Orm;
  private readonly bus: EventBus;
  private readonly subjects: ReturnType<typeof subjects>;
  private readonly logger: Logger;
  private readonly relayAfterMs: number;

  constructor(orm: Orm, bus: EventBus, options: { prefix: string; relayAfterMs?: number }, logger: Logger) {
    this.orm = orm;
    this.bus = bus;
    this.subjects = subjects(options.prefix);
    this.logger = logger;
    this.relayAfterMs = options.relayAfterMs ?? 5_000;
  }

  /** Publishes committed entries; what fails stays in the outbox for the relay. */
  async publish(entries: readonly AuditLog[]): Promise<void> {
    if (entries.length === 0) return;
    try {
      for (const entry of entries) await this.send(entry);
      await this.orm.em
        .fork()
        .nativeDelete(AuditOutboxEntity, { auditLogId: { $in: entries.map((e) => e.id) } });
    } catch (error) {
      this.logger.warn(
        { err: error, count: entries.length },
        'audit entries stored, publish deferred to the relay',
      );
    }
  }

  /** One relay pass over entries left in the outbox; returns how many went out. */
  async relayOnce(limit = 500): Promise<number> {
    return this.orm.em.fork().transactional(async (tx) => {
      const pending = await tx.find(
        AuditOutboxEntity,
        { createdAt: { $lt: new Date(Date.now() - this.relayAfterMs) } },
        { orderBy: { createdAt: 'asc' }, limit, lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE },
      );
      if (pending.length === 0) return 0;
      const ids = pending.map((p) => p.auditLogId);
      // The relay serves every tenant: it reads by id with the tenant filter off.
      const entries = await tx.find(
        AuditLogEntity,
        { id: { $in: ids } },
        { filters: false, orderBy: { tenantId: 'asc', sequence: 'asc' } },
      );
      for (const entry of entries) await this.send(entry);
      await tx.nativeDelete(AuditOutboxEntity, { auditLogId: { $in: ids } });
      return pending.length;
    });
  }

  startRelay(intervalMs = 1_000) {
    return pollLoop(() => this.relayOnce(), { intervalMs, what: 'audit outbox relay' }, this.logger);
  }

  private async send(entry: AuditLog): Promise<void> {
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
    await this.bus.publish(this.subjects.audit(entry.tenantId), encode(auditMessageV1, message), {
      msgId: `audit:${entry.tenantId}:${entry.sequence}`,
    });
  }
}
