import { createHash } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { EventBus } from '../bus/bus.ts';
import { encode, eventMessageV1, subjects } from '../bus/contracts.ts';
import { firstIdAt } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';
import { EventEntity, EventOutboxEntity } from './event.entity.ts';
import { fromEntity, toMessage, type PublishedEvent } from './published-event.ts';

/**
 * The stream's message id of an event: a digest of tenant and idempotency key, so any key a client
 * sends makes a valid NATS header, and a republish of the same event is dropped by the stream.
 */
export const eventMessageId = (event: Pick<PublishedEvent, 'tenantId' | 'idempotencyKey'>): string =>
  createHash('sha256').update(`${event.tenantId}\n${event.idempotencyKey}`).digest('base64url');

/**
 * Gets committed events onto the bus. publishEvent calls `publish` right after its commit, which
 * deletes the event's outbox entry once the stream has it; the relay republishes what is still in
 * the outbox after `relayAfterMs` (the bus was down, or the process died between commit and
 * publish). Relays on several workers may overlap: a repeat is harmless, the stream drops it by
 * message id.
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

  /**
   * One relay pass over up to `limit` unpublished events, oldest first; returns how many went out.
   * No transaction is held while publishing. An event the bus refuses is logged and skipped, so it
   * cannot hold back the others; a bus that does not answer ends the pass.
   */
  async relayOnce(limit = 500): Promise<number> {
    const em = this.orm.em.fork();
    const due = await em.find(
      EventOutboxEntity,
      { eventId: { $lt: firstIdAt(new Date(Date.now() - this.relayAfterMs)) } },
      { orderBy: { eventId: 'asc' }, limit },
    );
    if (due.length === 0) return 0;
    // The relay serves every tenant: the tenant filter is off on purpose.
    const rows = await em.find(
      EventEntity,
      { id: { $in: due.map((entry) => entry.eventId) } },
      { orderBy: { id: 'asc' }, filters: false },
    );
    // An entry whose event is gone (pruned after the stream got it, before its entry went) is done.
    const found = new Set(rows.map((row) => row.id));
    const gone = due.map((entry) => entry.eventId).filter((id) => !found.has(id));
    const sent: string[] = [];
    try {
      for (const row of rows) {
        try {
          await this.send(fromEntity(row));
          sent.push(row.id);
        } catch (error) {
          if (this.bus.isUnavailable(error)) throw error;
          this.logger.error(
            { err: error, eventId: row.id },
            'the bus refused an event; it stays unpublished',
          );
        }
      }
    } finally {
      if (sent.length + gone.length > 0) await this.mark([...gone, ...sent]);
    }
    return sent.length;
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
        msgId: eventMessageId(event),
      },
    );
  }

  /** Deletes the outbox entries of events the stream has. */
  private async mark(ids: string[]): Promise<void> {
    await this.orm.em.fork().nativeDelete(EventOutboxEntity, { eventId: { $in: ids } });
  }

  private async flushMarks(): Promise<void> {
    const ids = this.marks;
    this.marks = [];
    this.marking = undefined;
    try {
      await this.mark(ids);
    } catch (error) {
      // Unmarked events are only republished (and dropped as repeats); nothing is lost.
      this.logger.warn({ err: error, count: ids.length }, 'could not mark events published');
    }
  }
}
