import type { EventBus } from '../bus/bus.ts';
import { auditMessageV1, encode, subjects } from '../bus/contracts.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';
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
      await this.sendAll(entries);
    } catch (error) {
      this.logger.warn(
        { err: error, count: entries.length },
        'audit entries stored, publish deferred to the relay',
      );
    }
  }

  /**
   * One relay pass over entries left in the outbox, oldest first; returns how many went out. No
   * transaction is held while publishing; overlapping relays only repeat what the stream drops.
   */
  async relayOnce(limit = 500): Promise<number> {
    const em = this.orm.em.fork();
    const pending = await em.find(
      AuditOutboxEntity,
      { createdAt: { $lt: new Date(Date.now() - this.relayAfterMs) } },
      { orderBy: { createdAt: 'asc' }, limit },
    );
    if (pending.length === 0) return 0;
    // The relay serves every tenant: it reads by id with the tenant filter off.
    const entries = await em.find(
      AuditLogEntity,
      { id: { $in: pending.map((p) => p.auditLogId) } },
      { filters: false, orderBy: { tenantId: 'asc', sequence: 'asc' } },
    );
    return this.sendAll(entries);
  }

  startRelay(intervalMs = 1_000) {
    return pollLoop(() => this.relayOnce(), { intervalMs, what: 'audit outbox relay' }, this.logger);
  }

  /**
   * Sends entries in order and deletes the outbox rows of those sent. An entry the bus refuses is
   * logged and kept; a bus that does not answer ends the attempt.
   */
  private async sendAll(entries: readonly AuditLog[]): Promise<number> {
    const sent: string[] = [];
    try {
      for (const entry of entries) {
        try {
          await this.send(entry);
          sent.push(entry.id);
        } catch (error) {
          if (this.bus.isUnavailable(error)) throw error;
          this.logger.error(
            { err: error, auditLogId: entry.id },
            'the bus refused an audit entry; it stays queued',
          );
        }
      }
    } finally {
      if (sent.length > 0)
        await this.orm.em.fork().nativeDelete(AuditOutboxEntity, { auditLogId: { $in: sent } });
    }
    return sent.length;
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
