import { setTimeout as delay } from 'node:timers/promises';
import { LockMode } from '@mikro-orm/core';
import type { EventBus } from '../../bus/bus.ts';
import { encode, eventMessageV1, subjects } from '../../bus/contracts.ts';
import type { Orm } from '../../db/orm.ts';
import type { Logger } from '../../logger.ts';
import { pollLoop } from '../../util/poll-loop.ts';
import { EventEntity } from './event.entity.ts';
import { fromEntity, toMessage, type PublishedEvent } from './published-event.ts';

/**
 * Gets committed events onto the bus. publishEvent calls `publish` right after its commit; the
 * relay loop republishes whatever is still unmarked after `relayAfterMs` (the bus was down, or the
 * process died between commit and publish). A repeat is harmless: the message id is
 * `<tenant>:<idempotency key>`, which the stream drops within its duplicate window.
 */
export class EventOutbox {
  private readonly orm: Orm;
  private readonly bus: EventBus;
  private readonly subjects: ReturnType<typeof subjects>;
  private readonly logger: Logger;
  private readonly relayAfterMs: number;
  private marks: string[] = [];
  private marking: Promise<void> | undefined;

  constructor(orm: Orm, bus: EventBus, options: { prefix: string; relayAfterMs?: number }, logger: Logger) {
    this.orm = orm;
    this.bus = bus;
    this.subjects = subjects(options.prefix);
    this.logger = logger;
    this.relayAfterMs = options.relayAfterMs ?? 5_000;
  }

  /** Publishes one committed event; on failure leaves it to the relay and returns false. */
  async publish(event: PublishedEvent): Promise<boolean> {
    try {
      await this.send(event);
    } catch (error) {
      this.logger.warn(
        { err: error, eventId: event.id },
        'event stored, publish deferred to the outbox relay',
      );
      return false;
    }
    this.marks.push(event.id);
    this.marking ??= delay(20).then(() => this.flushMarks());
    return true;
  }

  /** One relay pass: republishes up to `limit` events left unpublished; returns how many went out. */
  async relayOnce(limit = 500): Promise<number> {
    return this.orm.em.fork().transactional(async (tx) => {
      // SKIP LOCKED lets several workers relay side by side without taking the same rows; the
      // relay serves every tenant, so the tenant filter is off on purpose.
      const rows = await tx.find(
        EventEntity,
        { publishedAt: null, createdAt: { $lt: new Date(Date.now() - this.relayAfterMs) } },
        {
          orderBy: { createdAt: 'asc' },
          limit,
          lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE,
          filters: false,
        },
      );
      const sent: string[] = [];
      for (const row of rows) {
        await this.send(fromEntity(row));
        sent.push(row.id);
      }
      if (sent.length > 0) {
        await tx.nativeUpdate(
          EventEntity,
          { id: { $in: sent } },
          { publishedAt: new Date() },
          { filters: false },
        );
      }
      return sent.length;
    });
  }

  startRelay(intervalMs = 1_000) {
    return pollLoop(() => this.relayOnce(), { intervalMs, what: 'event outbox relay' }, this.logger);
  }

  /** Waits for the pending publish marks. */
  async flush(): Promise<void> {
    await this.marking;
  }

  private async send(event: PublishedEvent): Promise<void> {
    await this.bus.publish(
      this.subjects.event(event.tenantId, event.type),
      encode(eventMessageV1, toMessage(event)),
      {
        msgId: `${event.tenantId}:${event.idempotencyKey}`,
      },
    );
  }

  private async flushMarks(): Promise<void> {
    const ids = this.marks;
    this.marks = [];
    this.marking = undefined;
    try {
      await this.orm.em
        .fork()
        .nativeUpdate(EventEntity, { id: { $in: ids } }, { publishedAt: new Date() }, { filters: false });
    } catch (error) {
      // Unmarked events are only republished (and deduplicated); nothing is lost.
      this.logger.warn({ err: error, count: ids.length }, 'could not mark events published');
    }
  }
}
