import type { Logger } from '../logger.ts';
import { retryBackoffMs } from '../util/backoff.ts';
import {
  InProgress,
  ReplayRefusedError,
  subjectMatches,
  type BusMessage,
  type Consumption,
  type ConsumerSpec,
  type EventBus,
  type LiveMessage,
  type MessageHandler,
  type MessageHeaders,
  type PublishAck,
  type StreamSpec,
  type Subscription,
} from './bus.ts';

class BusClosedError extends Error {
  constructor() {
    super('the bus is closed');
  }
}

interface Stored {
  seq: number;
  subject: string;
  data: Uint8Array;
  headers: MessageHeaders;
  at: number;
}

interface Stream {
  spec: StreamSpec;
  messages: Map<number, Stored>;
  lastSeq: number;
  /** msgId → seq and time, for the duplicate window. */
  seen: Map<string, { seq: number; at: number }>;
  durables: Map<string, Durable>;
}

/** Delivery state of one durable consumer, shared by every consume() call with its name, as in JetStream. */
class Durable {
  readonly ready: number[] = [];
  readonly deliveries = new Map<number, number>();
  readonly inFlight = new Map<number, NodeJS.Timeout>();
  readonly waiting = new Set<NodeJS.Timeout>();
  readonly workers = new Set<() => void>();
  spec: ConsumerSpec;

  constructor(spec: ConsumerSpec) {
    this.spec = spec;
  }

  wake(): void {
    for (const worker of this.workers) worker();
  }
}

/**
 * The in-process bus of embedded mode: same semantics as the JetStream adapter (dedupe window,
 * durable consumers with ack / delayed nak / ack-wait redelivery / max deliveries, live fan-out),
 * in memory, for one process.
 */
export class MemoryBus implements EventBus {
  readonly kind = 'memory' as const;
  private readonly streams = new Map<string, Stream>();
  private readonly subscribers = new Set<{ subject: string; handler: (m: LiveMessage) => void }>();
  private readonly duplicateWindowMs: number;
  private readonly maxMessages: number;
  private readonly logger: Logger;
  private closed = false;

  /** `maxMessages` bounds what a `limits` stream keeps in memory: the oldest go first, as with JetStream's max_msgs. */
  constructor(options: { duplicateWindowMs: number; maxMessages?: number }, logger: Logger) {
    this.duplicateWindowMs = options.duplicateWindowMs;
    this.maxMessages = options.maxMessages ?? 10_000;
    this.logger = logger;
  }

  async declareStreams(specs: StreamSpec[]): Promise<void> {
    for (const spec of specs) {
      const existing = this.streams.get(spec.name);
      if (existing) existing.spec = spec;
      else
        this.streams.set(spec.name, {
          spec,
          messages: new Map(),
          lastSeq: 0,
          seen: new Map(),
          durables: new Map(),
        });
    }
  }

  async publish(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: MessageHeaders },
  ): Promise<PublishAck> {
    this.assertOpen();
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(options.headers ?? {})) headers[name.toLowerCase()] = value;
    return this.store(subject, data, options.msgId, headers);
  }

  /** Stores a message; one whose id was already seen within the window is dropped. */
  private store(subject: string, data: Uint8Array, msgId: string, headers: MessageHeaders): PublishAck {
    const stream = this.streamOf(subject);
    const now = Date.now();
    this.expire(stream, now);
    const seen = stream.seen.get(msgId);
    if (seen) return { seq: seen.seq, duplicate: true };

    const seq = ++stream.lastSeq;
    stream.messages.set(seq, { seq, subject, data, headers, at: now });
    if (stream.spec.maxPerSubject !== undefined) this.trimSubject(stream, subject, stream.spec.maxPerSubject);
    stream.seen.set(msgId, { seq, at: now });
    for (const durable of stream.durables.values()) {
      if (!durable.spec.filterSubject || subjectMatches(durable.spec.filterSubject, subject)) {
        durable.ready.push(seq);
        durable.wake();
      }
    }
    for (const sub of this.subscribers) {
      if (subjectMatches(sub.subject, subject)) queueMicrotask(() => sub.handler({ subject, data, seq }));
    }
    return { seq, duplicate: false };
  }

  consume(spec: ConsumerSpec, handler: MessageHandler, options: { concurrency: number }): Consumption {
    this.assertOpen();
    const stream = this.streams.get(spec.stream);
    if (!stream) throw new Error(`stream ${spec.stream} is not declared`);
    let durable = stream.durables.get(spec.durable);
    if (!durable) {
      durable = new Durable(spec);
      for (const m of stream.messages.values()) {
        if (!spec.filterSubject || subjectMatches(spec.filterSubject, m.subject)) durable.ready.push(m.seq);
      }
      stream.durables.set(spec.durable, durable);
    }
    durable.spec = spec;

    const running = new Set<Promise<void>>();
    const inProgress = new InProgress(spec);
    let stopped = false;
    const d = durable;
    const pump = (): void => {
      while (!stopped && running.size < options.concurrency && d.ready.length > 0) {
        const seq = d.ready.shift()!;
        const stored = stream.messages.get(seq);
        if (!stored) continue;
        const task = this.deliver(stream, d, stored, handler, inProgress).finally(() => {
          running.delete(task);
          pump();
        });
        running.add(task);
      }
    };
    d.workers.add(pump);
    queueMicrotask(pump);

    return {
      stop: async () => {
        stopped = true;
        d.workers.delete(pump);
        await Promise.allSettled([...running]);
        inProgress.stop();
      },
    };
  }

  subscribe(subject: string, handler: (message: LiveMessage) => void): Subscription {
    this.assertOpen();
    const sub = { subject, handler };
    this.subscribers.add(sub);
    return {
      ready: Promise.resolve(this.streamOf(subject).lastSeq),
      unsubscribe: () => this.subscribers.delete(sub),
    };
  }

  async replay(
    subject: string,
    range: { afterSeq: number; untilSeq: number; limit: number },
  ): Promise<LiveMessage[]> {
    const { afterSeq, untilSeq, limit } = range;
    const stream = this.streamOf(subject);
    this.expire(stream, Date.now());
    const firstSeq = stream.messages.keys().next().value ?? stream.lastSeq + 1;
    if (afterSeq > stream.lastSeq) {
      throw new ReplayRefusedError('ahead', `sequence ${afterSeq} is beyond the end of the stream`);
    }
    if (afterSeq + 1 < firstSeq) {
      throw new ReplayRefusedError('expired', `messages after sequence ${afterSeq} are no longer kept`);
    }
    const replayed: LiveMessage[] = [];
    for (const m of stream.messages.values()) {
      if (m.seq <= afterSeq || m.seq > untilSeq || !subjectMatches(subject, m.subject)) continue;
      replayed.push({ subject: m.subject, data: m.data, seq: m.seq });
      if (replayed.length > limit) {
        throw new ReplayRefusedError('too-many', `more than ${limit} messages after sequence ${afterSeq}`);
      }
    }
    return replayed;
  }

  async backlog(stream: string): Promise<number> {
    this.assertOpen();
    const found = this.streams.get(stream);
    if (!found) throw new Error(`stream ${stream} is not declared`);
    return found.messages.size;
  }

  async consumerState(stream: string, durable: string): Promise<{ pending: number; ackPending: number }> {
    this.assertOpen();
    const found = this.streams.get(stream)?.durables.get(durable);
    if (!found) return { pending: 0, ackPending: 0 };
    return { pending: found.ready.length + found.waiting.size, ackPending: found.inFlight.size };
  }

  isUnavailable(error: unknown): boolean {
    return error instanceof BusClosedError;
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const stream of this.streams.values()) {
      for (const d of stream.durables.values()) {
        d.workers.clear();
        for (const timer of [...d.inFlight.values(), ...d.waiting]) clearTimeout(timer);
      }
    }
    this.subscribers.clear();
  }

  private async deliver(
    stream: Stream,
    d: Durable,
    stored: Stored,
    handler: MessageHandler,
    inProgress: InProgress,
  ): Promise<void> {
    const deliveryCount = (d.deliveries.get(stored.seq) ?? 0) + 1;
    d.deliveries.set(stored.seq, deliveryCount);
    let settled = false;
    const armAckWait = () => {
      clearTimeout(d.inFlight.get(stored.seq));
      d.inFlight.set(
        stored.seq,
        setTimeout(
          () => settle(() => this.redeliver(stream, d, stored.seq, deliveryCount, 0)),
          d.spec.ackWaitMs,
        ),
      );
    };
    const settle = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(d.inFlight.get(stored.seq));
      d.inFlight.delete(stored.seq);
      outcome();
    };
    const done = () => {
      d.deliveries.delete(stored.seq);
      if (stream.spec.retention === 'workqueue') stream.messages.delete(stored.seq);
    };
    const message: BusMessage = {
      subject: stored.subject,
      data: stored.data,
      headers: stored.headers,
      seq: stored.seq,
      deliveryCount,
      ack: () => settle(done),
      nak: (delayMs = 0) => settle(() => this.redeliver(stream, d, stored.seq, deliveryCount, delayMs)),
      term: () => settle(done),
      working: () => {
        if (!settled) armAckWait();
      },
    };
    armAckWait();
    inProgress.hold(message);
    try {
      await handler(message);
      message.ack();
    } catch (error) {
      this.logger.error(
        { err: error, subject: stored.subject },
        'a message handler threw; the message comes back',
      );
      message.nak(retryBackoffMs(message.deliveryCount));
    } finally {
      inProgress.release(message);
    }
  }

  private redeliver(stream: Stream, d: Durable, seq: number, deliveryCount: number, delayMs: number): void {
    if (deliveryCount >= d.spec.maxDeliver) {
      d.deliveries.delete(seq);
      return;
    }
    const requeue = () => {
      if (this.closed || !stream.messages.has(seq)) return;
      d.ready.push(seq);
      d.wake();
    };
    if (delayMs <= 0) return requeue();
    const timer = setTimeout(() => {
      d.waiting.delete(timer);
      requeue();
    }, delayMs);
    d.waiting.add(timer);
  }

  /** Drops a subject's oldest messages beyond `keep`, as JetStream's max_msgs_per_subject does. */
  private trimSubject(stream: Stream, subject: string, keep: number): void {
    const ofSubject = [...stream.messages.values()].filter((m) => m.subject === subject);
    for (const m of ofSubject.slice(0, Math.max(0, ofSubject.length - keep))) stream.messages.delete(m.seq);
  }

  async last(subject: string): Promise<LiveMessage | null> {
    this.assertOpen();
    const messages = [...this.streamOf(subject).messages.values()];
    const newest = messages.findLast((m) => m.subject === subject);
    return newest ? { subject: newest.subject, data: newest.data, seq: newest.seq } : null;
  }

  private expire(stream: Stream, now: number): void {
    const window = Math.min(this.duplicateWindowMs, stream.spec.duplicateWindowMs ?? Infinity);
    for (const [id, entry] of stream.seen) {
      if (now - entry.at < window) break;
      stream.seen.delete(id);
    }
    if (stream.spec.retention !== 'limits') return;
    for (const [seq, m] of stream.messages) {
      if (now - m.at < stream.spec.maxAgeMs && stream.messages.size < this.maxMessages) break;
      stream.messages.delete(seq);
    }
  }

  /** The stream capturing a subject; a subscription's filter may be narrower than the stream's. */
  private streamOf(subject: string): Stream {
    const stream = [...this.streams.values()].find((s) =>
      s.spec.subjects.some((f) => subjectMatches(f, subject)),
    );
    if (!stream) throw new Error(`no stream captures subject ${subject}`);
    return stream;
  }

  private assertOpen(): void {
    if (this.closed) throw new BusClosedError();
  }
}
