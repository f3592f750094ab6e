import type { EventBus, LiveMessage, Subscription } from '../bus/bus.ts';
import { ReplayRefusedError } from '../bus/bus.ts';
import { CursorExpiredError, LiveUnavailableError, SlowSubscriberError } from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';

/**
 * What a live stream yields: items, and at most one SlowSubscriberError as its last element (the
 * subscriber is told why it ends; an iterator that threw would take the whole socket down). Its
 * return() takes effect at once, even while a next() waits.
 */
export type LiveStream<T> = AsyncIterableIterator<T | SlowSubscriberError>;

export interface LiveRequest<T> {
  /** A subject of the caller's own tenant: isolation is this filter. */
  subject: string;
  /** Turns a message into its item once per feed, for every subscriber; null drops it. */
  decode: (message: LiveMessage) => T | null;
  /** A narrower choice than the subject can express (e.g. delivery statuses). */
  accept?: (value: T) => boolean;
  /** Resume after this stream sequence: what was missed is replayed first. */
  after?: number | null;
  /** Called once the stream ends, however it ends (also when it fails to open). */
  onClose?: () => void;
}

type LiveMetrics = Pick<Metrics, 'liveFramesSent' | 'liveFramesDropped'>;

export interface LiveLimits {
  bufferMessages: number;
  bufferBytes: number;
  replayLimit: number;
  /** How long a new feed may take to start receiving. */
  readyTimeoutMs: number;
}

/**
 * Live fan-out inside one process: one bus subscription per distinct subject, shared by every
 * local subscriber of it; each message is decoded once. Subscribers get a bounded queue each: one
 * that falls further behind is cut off with SlowSubscriberError instead of growing memory.
 */
export class LiveHub {
  private readonly bus: EventBus;
  private readonly logger: Logger;
  private readonly limits: LiveLimits;
  private readonly metrics: LiveMetrics;
  private readonly feeds = new Map<string, Feed>();

  constructor(deps: { bus: EventBus; logger: Logger; metrics: LiveMetrics }, limits: LiveLimits) {
    this.bus = deps.bus;
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.limits = limits;
  }

  /**
   * A live stream of `subject`. With `after`, what was stored after that sequence comes first,
   * then live items, without a gap or a repeat at the seam. Throws CursorExpiredError when the
   * missed items are gone or too many.
   */
  async open<T>(request: LiveRequest<T>): Promise<LiveStream<T>> {
    const feed = this.feed(request.subject, request.decode);
    const accept = request.accept as ((value: unknown) => boolean) | undefined;
    const listener = new Listener<T>(feed, accept, this.limits, this.metrics, request.onClose);
    feed.opening++;
    try {
      await withTimeout(feed.ready, this.limits.readyTimeoutMs);
    } catch (error) {
      feed.abandon();
      listener.end();
      throw new LiveUnavailableError((error as Error).message);
    }
    feed.opening--;
    try {
      // From here every message past feed.lastSeq reaches the listener (held until the replay is in).
      const seen = feed.attach(listener);
      if (request.after != null) await this.replay(request.subject, feed, listener, request.after, seen);
      listener.release(request.after ?? seen);
      return listener;
    } catch (error) {
      listener.end();
      throw error;
    }
  }

  /** Ends every live stream (at shutdown). */
  close(): void {
    for (const feed of this.feeds.values()) feed.end();
  }

  /** Bus subscriptions and subscribers in this process. */
  stats(): { feeds: number; subscribers: number } {
    let subscribers = 0;
    for (const feed of this.feeds.values()) subscribers += feed.size;
    return { feeds: this.feeds.size, subscribers };
  }

  private feed(subject: string, decode: (message: LiveMessage) => unknown): Feed {
    let feed = this.feeds.get(subject);
    if (!feed) {
      const created: Feed = new Feed(this.bus, subject, decode, this.logger, () => {
        if (this.feeds.get(subject) === created) this.feeds.delete(subject);
      });
      feed = created;
      this.feeds.set(subject, feed);
    }
    return feed;
  }

  private async replay<T>(
    subject: string,
    feed: Feed,
    listener: Listener<T>,
    afterSeq: number,
    untilSeq: number,
  ): Promise<void> {
    let missed: LiveMessage[];
    try {
      missed = await this.bus.replay(subject, { afterSeq, untilSeq, limit: this.limits.replayLimit });
    } catch (error) {
      if (!(error instanceof ReplayRefusedError)) throw error;
      // Said without the bus's reason: that names positions in a stream all tenants share.
      throw new CursorExpiredError(
        error.reason === 'ahead'
          ? 'the cursor does not belong to this stream'
          : error.reason === 'too-many'
            ? `more than ${this.limits.replayLimit} items were missed since the cursor; read them with a query and subscribe without a cursor`
            : 'the cursor is too old to resume from; read what was missed with a query and subscribe without a cursor',
      );
    }
    const bytes = missed.reduce((sum, m) => sum + m.data.byteLength, 0);
    if (bytes > this.limits.bufferBytes) {
      throw new CursorExpiredError(
        `the cursor is too old to resume from (more than ${this.limits.bufferBytes} bytes were missed); read what was missed with a query and subscribe without a cursor`,
      );
    }
    for (const message of missed)
      listener.replayed(message.seq, feed.decodeOnce(message), message.data.byteLength);
  }
}

/** One bus subscription and its local subscribers. */
class Feed {
  readonly subject: string;
  private readonly decode: (message: LiveMessage) => unknown;
  private readonly logger: Logger;
  private readonly onEmpty: () => void;
  private readonly listeners = new Set<Listener<unknown>>();
  private readonly subscription: Subscription;
  /** The last sequence handed to listeners (or the stream's end when the feed started). */
  lastSeq = 0;
  /** Subscribers waiting for the feed to be ready: it stays while any wait. */
  opening = 0;
  readonly ready: Promise<number>;

  constructor(
    bus: EventBus,
    subject: string,
    decode: (message: LiveMessage) => unknown,
    logger: Logger,
    onEmpty: () => void,
  ) {
    this.subject = subject;
    this.decode = decode;
    this.logger = logger;
    this.onEmpty = onEmpty;
    this.subscription = bus.subscribe(subject, (message) => this.deliver(message));
    this.ready = this.subscription.ready.then((seq) => {
      this.lastSeq = Math.max(this.lastSeq, seq);
      return seq;
    });
  }

  get size(): number {
    return this.listeners.size;
  }

  /** Adds a listener; returns the last sequence it will not receive from the feed. */
  attach(listener: Listener<unknown>): number {
    this.listeners.add(listener);
    listener.attached = true;
    return this.lastSeq;
  }

  detach(listener: Listener<unknown>): void {
    this.listeners.delete(listener);
    this.closeIfUnused();
  }

  /** A subscriber gave up waiting for the feed to be ready. */
  abandon(): void {
    this.opening--;
    this.closeIfUnused();
  }

  private closeIfUnused(): void {
    if (this.listeners.size > 0 || this.opening > 0) return;
    this.subscription.unsubscribe();
    this.onEmpty();
  }

  decodeOnce(message: LiveMessage): unknown {
    try {
      return this.decode(message);
    } catch (error) {
      this.logger.error(
        { err: error, subject: message.subject },
        'dropped a live message that breaks its contract',
      );
      return null;
    }
  }

  end(): void {
    for (const listener of [...this.listeners]) listener.end();
  }

  private deliver(message: LiveMessage): void {
    if (message.seq <= this.lastSeq) return;
    this.lastSeq = message.seq;
    const value = this.decodeOnce(message);
    for (const listener of this.listeners) listener.offer(message.seq, value, message.data.byteLength);
  }
}

/** One subscriber's bounded queue, read as an async iterator. */
class Listener<T> implements LiveStream<T> {
  private readonly feed: Feed;
  private readonly accept: ((value: unknown) => boolean) | undefined;
  private readonly limits: LiveLimits;
  private readonly metrics: LiveMetrics;
  private queue: { seq: number; value: T; bytes: number }[] = [];
  /** Live messages that arrived while the replay was read. */
  private held: { seq: number; value: unknown; bytes: number }[] | null = [];
  private bytes = 0;
  private lastSeq = 0;
  private failure: SlowSubscriberError | null = null;
  private ended = false;
  attached = false;
  private wake: (() => void) | null = null;
  private onClose: (() => void) | undefined;

  constructor(
    feed: Feed,
    accept: ((value: unknown) => boolean) | undefined,
    limits: LiveLimits,
    metrics: LiveMetrics,
    onClose?: () => void,
  ) {
    this.feed = feed;
    this.accept = accept;
    this.limits = limits;
    this.metrics = metrics;
    this.onClose = onClose;
  }

  offer(seq: number, value: unknown, bytes: number): void {
    if (!this.held) return this.enqueue(seq, value, bytes);
    this.held.push({ seq, value, bytes });
    if (this.held.length > this.limits.bufferMessages) this.overflow(0);
  }

  replayed(seq: number, value: unknown, bytes: number): void {
    this.enqueue(seq, value, bytes);
  }

  /** Ends the replay: items from now on come from the feed, after `seq` only. */
  release(seq: number): void {
    this.lastSeq = Math.max(this.lastSeq, seq);
    const held = this.held ?? [];
    this.held = null;
    for (const item of held) this.enqueue(item.seq, item.value, item.bytes);
  }

  end(): void {
    this.ended = true;
    this.detach();
    this.notify();
    this.closed();
  }

  detach(): void {
    if (!this.attached) return;
    this.attached = false;
    this.feed.detach(this);
  }

  async next(): Promise<IteratorResult<T | SlowSubscriberError>> {
    for (;;) {
      const item = this.queue.shift();
      if (item) {
        this.bytes -= item.bytes;
        this.metrics.liveFramesSent.inc();
        return { done: false, value: item.value };
      }
      if (this.failure) {
        const failure = this.failure;
        this.failure = null;
        this.ended = true;
        return { done: false, value: failure };
      }
      if (this.ended) {
        this.closed();
        return { done: true, value: undefined };
      }
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  async return(): Promise<IteratorResult<T>> {
    this.queue = [];
    this.end();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  private enqueue(seq: number, value: unknown, bytes: number): void {
    if (this.ended || this.failure || seq <= this.lastSeq) return;
    this.lastSeq = seq;
    if (value === null || (this.accept && !this.accept(value))) return;
    if (this.queue.length >= this.limits.bufferMessages || this.bytes + bytes > this.limits.bufferBytes) {
      return this.overflow(1);
    }
    this.queue.push({ seq, value: value as T, bytes });
    this.bytes += bytes;
    this.notify();
  }

  private closed(): void {
    const onClose = this.onClose;
    this.onClose = undefined;
    onClose?.();
  }

  /**
   * What is queued is dropped at once: a subscriber this far behind cannot hold memory. `refused`:
   * the items dropped besides those queued and held (the one that did not fit).
   */
  private overflow(refused: number): void {
    this.metrics.liveFramesDropped.inc(this.queue.length + (this.held?.length ?? 0) + refused);
    this.queue = [];
    this.held = this.held && [];
    this.bytes = 0;
    this.failure = new SlowSubscriberError(
      `the subscriber fell more than ${this.limits.bufferMessages} items or ${this.limits.bufferBytes} bytes behind; resubscribe with the last cursor received`,
    );
    this.detach();
    this.notify();
  }

  private notify(): void {
    const wake = this.wake;
    this.wake = null;
    wake?.();
  }
}

async function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`the live stream did not start within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
