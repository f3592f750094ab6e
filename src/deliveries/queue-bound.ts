import type { Logger } from '../logger.ts';
import { retryBackoffMs } from '../util/backoff.ts';

/**
 * Backpressure from the delivery workers to the dispatcher. The dispatcher makes deliveries only
 * while the delivery queue (the deliveries stream: queued, or handed to a worker and not yet
 * settled) holds fewer than `limit`; past it, events wait on their own stream, where waiting costs
 * nothing, and the CPU goes to delivering. The queue is measured on the bus (it counts every
 * process's work), every `pollMs` while it is filling. Deliveries this process admitted and has
 * not yet put on the stream when a measurement starts, or admitted while it runs, are added to
 * it: the estimate may count one twice, never none. Each dispatcher process keeps to the bound on
 * its own.
 */
export class QueueBound {
  private readonly measure: () => Promise<number>;
  private readonly limit: number;
  private readonly pollMs: number;
  private readonly logger: Logger;
  /** The queue as last measured, plus what was admitted since. */
  private queued = 0;
  /** Admitted, and not yet on the stream. */
  private inTransit = 0;
  private admittedDuringMeasure = 0;
  private measuring = false;
  private timer: NodeJS.Timeout | undefined;
  /** Measurements failed in a row: the next waits longer, and only the first is logged. */
  private failures = 0;
  private closed = false;
  private readonly waiting: { count: number; admit: (admitted: boolean) => void }[] = [];

  constructor(measure: () => Promise<number>, options: { limit: number; pollMs?: number }, logger: Logger) {
    this.measure = measure;
    this.limit = options.limit;
    this.pollMs = options.pollMs ?? 50;
    this.logger = logger;
  }

  /** Counts `count` deliveries as queued if they fit now (no promise, no timer); false otherwise. */
  tryAdmit(count: number): boolean {
    if (this.closed || this.waiting.length > 0 || !this.fits(count)) return false;
    this.take(count);
    return true;
  }

  /** Waits until `count` deliveries fit, and counts them; false when the bound was closed meanwhile. */
  admit(count: number): Promise<boolean> {
    if (this.tryAdmit(count)) return Promise.resolve(true);
    if (this.closed) return Promise.resolve(false);
    return new Promise<boolean>((admit) => {
      this.waiting.push({ count, admit });
      this.schedule();
    });
  }

  /** Deliveries admitted earlier are on the stream now (or, their dispatch failed, never will be). */
  landed(count: number): void {
    this.inTransit -= count;
  }

  /** Releases every waiter with false (the process is stopping) and stops measuring. */
  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    for (const waiter of this.waiting.splice(0)) waiter.admit(false);
  }

  /**
   * Whether `count` more fit. An event with more deliveries than the bound goes once the queue is
   * at most half full: an empty queue may never come (other processes, retries, messages that
   * ran out of deliveries stay on the stream).
   */
  private fits(count: number): boolean {
    return count >= this.limit ? this.queued <= this.limit / 2 : this.queued + count <= this.limit;
  }

  private take(count: number): void {
    this.queued += count;
    this.inTransit += count;
    if (this.measuring) this.admittedDuringMeasure += count;
    // Measured again before the estimate reaches the bound, so a draining queue never stalls here.
    if (this.queued > this.limit / 2) this.schedule();
  }

  private schedule(): void {
    if (this.timer || this.measuring || this.closed) return;
    const delayMs = this.failures === 0 ? this.pollMs : Math.max(this.pollMs, retryBackoffMs(this.failures));
    this.timer = setTimeout(() => void this.refresh(), delayMs);
  }

  private async refresh(): Promise<void> {
    this.timer = undefined;
    this.measuring = true;
    this.admittedDuringMeasure = 0;
    const inTransit = this.inTransit;
    try {
      const measured = await this.measure();
      this.queued = measured + inTransit + this.admittedDuringMeasure;
      if (this.failures > 0)
        this.logger.info({ failures: this.failures }, 'the delivery queue is measured again');
      this.failures = 0;
    } catch (error) {
      // Kept as estimated, so the bound holds (the bus that does not answer takes no deliveries
      // either); measured again after a backoff.
      if (this.failures++ === 0) this.logger.warn({ err: error }, 'could not measure the delivery queue');
    } finally {
      this.measuring = false;
    }
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.count)) {
      const waiter = this.waiting.shift()!;
      this.take(waiter.count);
      waiter.admit(true);
    }
    if (this.waiting.length > 0 || this.queued > this.limit / 2) this.schedule();
  }
}
