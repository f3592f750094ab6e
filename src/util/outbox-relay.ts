import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.ts';
import { pollLoop } from './poll-loop.ts';

/**
 * A table of committed items not yet on the bus, each written with its item in one transaction
 * (events, audit entries): what the relay needs of it.
 */
export interface Outbox<T> {
  /** What the log calls one item, e.g. "an event". */
  what: string;
  idOf(item: T): string;
  /**
   * Up to `limit` items whose entries were made before `before`, oldest first, and the ids of
   * entries whose item is gone (done: nothing to send).
   */
  due(before: Date, limit: number): Promise<{ items: T[]; gone: string[] }>;
  /** Puts one item on the bus; a repeat is dropped by the stream (its message id). */
  send(item: T): Promise<void>;
  /** Deletes the entries of items the bus has. */
  remove(ids: string[]): Promise<void>;
  /** How many entries wait: the metrics' herald_outbox_entries. */
  depth(): Promise<number>;
}

/**
 * Gets committed items onto the bus: the writer calls `publish` right after its commit, and the
 * relay (every worker, every `intervalMs`) sends what is still in the outbox after `relayAfterMs`
 * (the bus was down, or the process died between commit and publish). Relays may overlap and
 * repeat an item: the stream drops the repeat. Items go out in order; one the bus refuses is
 * logged and stays, so it cannot hold back the others; a bus that does not answer ends the pass.
 */
export class OutboxRelay<T> {
  private readonly outbox: Outbox<T>;
  private readonly isUnavailable: (error: unknown) => boolean;
  private readonly logger: Logger;
  private readonly relayAfterMs: number;
  private readonly intervalMs: number;
  /** Entries of items published, deleted together shortly after (one statement for many commits). */
  private published: string[] = [];
  private removing: Promise<void> | undefined;
  /** Publishes under way (a caller need not wait for one): flush waits for them. */
  private readonly publishing = new Set<Promise<number>>();

  constructor(
    outbox: Outbox<T>,
    deps: { isUnavailable: (error: unknown) => boolean; logger: Logger },
    options: { relayAfterMs?: number; intervalMs?: number } = {},
  ) {
    this.outbox = outbox;
    this.isUnavailable = deps.isUnavailable;
    this.logger = deps.logger;
    this.relayAfterMs = options.relayAfterMs ?? 5_000;
    this.intervalMs = options.intervalMs ?? 1_000;
  }

  /** Publishes items committed just now; whatever does not go out stays for the relay. Returns how many went. */
  publish(items: readonly T[]): Promise<number> {
    const publishing = this.publishNow(items).finally(() => this.publishing.delete(publishing));
    this.publishing.add(publishing);
    return publishing;
  }

  private async publishNow(items: readonly T[]): Promise<number> {
    if (items.length === 0) return 0;
    const { sent, unavailable } = await this.sendAll(items);
    if (unavailable) {
      this.logger.warn(
        { err: unavailable.error, count: items.length - sent.length },
        `stored, publish deferred to the outbox relay: ${this.outbox.what}`,
      );
    }
    if (sent.length > 0) {
      this.published.push(...sent);
      this.removing ??= delay(20).then(() => this.removePublished());
    }
    return sent.length;
  }

  /** One relay pass over up to `limit` items; returns how many went out. No transaction is held while sending. */
  async relayOnce(limit = 500): Promise<number> {
    const { items, gone } = await this.outbox.due(new Date(Date.now() - this.relayAfterMs), limit);
    if (items.length === 0 && gone.length === 0) return 0;
    const { sent, unavailable } = await this.sendAll(items);
    if (sent.length + gone.length > 0) await this.outbox.remove([...gone, ...sent]);
    if (unavailable) throw unavailable.error;
    return sent.length;
  }

  start(): { stop(): Promise<void> } {
    return pollLoop(
      () => this.relayOnce(),
      { intervalMs: this.intervalMs, what: `outbox relay of ${this.outbox.what}` },
      this.logger,
    );
  }

  /** Entries not yet on the bus (or on it, and not yet cleared). */
  depth(): Promise<number> {
    return this.outbox.depth();
  }

  /** Waits for the publishes under way and the deletions of published entries. */
  async flush(): Promise<void> {
    await Promise.all(this.publishing);
    while (this.removing) await this.removing;
  }

  private async sendAll(
    items: readonly T[],
  ): Promise<{ sent: string[]; unavailable: { error: unknown } | null }> {
    const sent: string[] = [];
    for (const item of items) {
      const id = this.outbox.idOf(item);
      try {
        await this.outbox.send(item);
        sent.push(id);
      } catch (error) {
        if (this.isUnavailable(error)) return { sent, unavailable: { error } };
        this.logger.error({ err: error, id }, `the bus refused ${this.outbox.what}; it stays in the outbox`);
      }
    }
    return { sent, unavailable: null };
  }

  /** Deletes the entries published until now; those published meanwhile go in the next round. */
  private async removePublished(): Promise<void> {
    const ids = this.published;
    this.published = [];
    try {
      await this.outbox.remove(ids);
    } catch (error) {
      // Entries left behind are only sent again (and dropped as repeats): nothing is lost.
      this.logger.warn(
        { err: error, count: ids.length },
        `could not clear the outbox of ${this.outbox.what}`,
      );
    }
    // Cleared only now, so that flush() waits for a deletion under way.
    this.removing = this.published.length > 0 ? delay(20).then(() => this.removePublished()) : undefined;
  }
}
