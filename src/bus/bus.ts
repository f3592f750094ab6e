/**
 * The event bus: JetStream in production (nats.ts), in-process in embedded mode (memory.ts).
 * Both pass the same contract suite (test/bus.contract.test.ts); nothing outside bus/ touches NATS.
 */

export interface StreamSpec {
  name: string;
  /** Subject filters the stream captures. */
  subjects: string[];
  /** `limits` keeps messages for maxAgeMs (replayable); `workqueue` removes a message once acked. */
  retention: 'limits' | 'workqueue';
  maxAgeMs: number;
  /** How long a message id is remembered, when shorter than the bus's configured window. */
  duplicateWindowMs?: number;
  /** Messages kept per subject, the oldest dropped first; unlimited when unset. */
  maxPerSubject?: number;
}

export interface ConsumerSpec {
  stream: string;
  /** Durable name: every process consuming with the same name shares the work. */
  durable: string;
  filterSubject?: string;
  /**
   * An unacked message is delivered again after this long. While its handler runs, the bus tells
   * the server it is still worked on (InProgress), so this is how soon a dead process's messages
   * come back, not a bound on how long a handler may take.
   */
  ackWaitMs: number;
  /**
   * How long a handler may hold a message and have it reported in progress; past this it comes
   * back after one more ack wait, as if its process had died (a handler stuck for good).
   */
  maxWorkMs: number;
  /** After this many deliveries the message is dropped (the handler records the outcome before that). */
  maxDeliver: number;
  /** Most messages handed out and not yet settled, across all processes. */
  maxAckPending: number;
}

export interface PublishAck {
  seq: number;
  /** True when the message id was seen within the duplicate window: nothing new was stored. */
  duplicate: boolean;
}

/** Headers a publisher sets on a message (the W3C trace context): lower-case names, one value each. */
export type MessageHeaders = Readonly<Record<string, string>>;

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  /** The headers it was published with; empty when none. */
  headers: MessageHeaders;
  /** Stream sequence. */
  seq: number;
  /** 1 on first delivery. */
  deliveryCount: number;
  ack(): void;
  /** Deliver again after delayMs (0 = as soon as possible). */
  nak(delayMs?: number): void;
  /** Never deliver again. */
  term(): void;
  /** Still working: restart the ack-wait timer. */
  working(): void;
}

export interface LiveMessage {
  subject: string;
  data: Uint8Array;
  /** Stream sequence. */
  seq: number;
}

/**
 * Settles a message after the handler: a handler that returns without settling acks it. A
 * handler should settle failures itself (deliveries/consumer.ts); one that throws is logged as a
 * bug and its message naked with the shared backoff (util/backoff.ts), so it cannot spin.
 */
export type MessageHandler = (message: BusMessage) => Promise<void>;

export interface Consumption {
  /** Stops taking messages and waits for the handlers in flight. */
  stop(): Promise<void>;
}

export interface Subscription {
  /**
   * Resolves once the subscription receives: with the stream's last sequence at that moment. Every
   * matching message stored with a higher sequence reaches the handler, in order.
   */
  ready: Promise<number>;
  unsubscribe(): void;
}

/** Why a replay was refused: the messages asked for are gone, too many, or never existed. */
export class ReplayRefusedError extends Error {
  readonly reason: 'expired' | 'too-many' | 'ahead';
  constructor(reason: 'expired' | 'too-many' | 'ahead', message: string) {
    super(message);
    this.reason = reason;
  }
}

export interface EventBus {
  readonly kind: 'nats' | 'memory';
  /** Creates the streams, or updates them to match; safe to call on every start. */
  declareStreams(streams: StreamSpec[]): Promise<void>;
  publish(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: MessageHeaders },
  ): Promise<PublishAck>;
  /** Loops until stopped, surviving disconnects, with at most `concurrency` handlers running. */
  consume(consumer: ConsumerSpec, handler: MessageHandler, options: { concurrency: number }): Consumption;
  /**
   * Live fan-out: every subscriber of a matching subject sees each message the stream stores from
   * now on, once (a publish the stream drops as a duplicate reaches nobody).
   */
  subscribe(subject: string, handler: (message: LiveMessage) => void): Subscription;
  /**
   * The stored messages of `subject` with afterSeq < seq <= untilSeq, in order: what a live
   * subscriber missed. Throws ReplayRefusedError when some were already removed from the stream,
   * when there are more than `limit`, or when afterSeq is beyond the stream's end.
   */
  replay(
    subject: string,
    range: { afterSeq: number; untilSeq: number; limit: number },
  ): Promise<LiveMessage[]>;
  /** The newest stored message of a subject (one without wildcards), or null when there is none. */
  last(subject: string): Promise<LiveMessage | null>;
  /** How many messages a work-queue stream holds: stored and not yet acked (its backlog). */
  backlog(stream: string): Promise<number>;
  /**
   * A durable consumer's backlog: messages of its stream not yet handed out (`pending`), and handed
   * out and not yet settled (`ackPending`). Zero for both before the consumer first consumes.
   */
  consumerState(stream: string, durable: string): Promise<{ pending: number; ackPending: number }>;
  /** True when an error means the bus did not answer (so later may work), not that it refused the message. */
  isUnavailable(error: unknown): boolean;
  /** Readiness: the bus answers now. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** NATS subject matching: `*` is one token, `>` one or more trailing tokens. */
export function subjectMatches(filter: string, subject: string): boolean {
  const f = filter.split('.');
  const s = subject.split('.');
  for (let i = 0; i < f.length; i++) {
    if (f[i] === '>') return s.length > i;
    if (i >= s.length || (f[i] !== '*' && f[i] !== s[i])) return false;
  }
  return f.length === s.length;
}

/**
 * Keeps the messages a consumption is working on from coming back while their handlers run:
 * every third of the ack wait, each one held (for less than maxWorkMs) is reported as still
 * worked on. A process that dies stops reporting, and its messages come back within one ack wait.
 */
export class InProgress {
  private readonly held = new Map<BusMessage, number>();
  private readonly timer: NodeJS.Timeout;

  constructor(spec: Pick<ConsumerSpec, 'ackWaitMs' | 'maxWorkMs'>) {
    const every = Math.max(100, Math.floor(spec.ackWaitMs / 3));
    // Every message held is reported on each tick: one held a moment ago may have waited, since
    // the server sent it, for a handler to take it.
    this.timer = setInterval(() => {
      const now = performance.now();
      for (const [message, heldFrom] of this.held) {
        if (now - heldFrom >= spec.maxWorkMs) continue;
        try {
          message.working();
        } catch {
          // The connection is closing: the server will redeliver, as for a process that died.
        }
      }
    }, every);
    this.timer.unref();
  }

  hold(message: BusMessage): void {
    this.held.set(message, performance.now());
  }

  release(message: BusMessage): void {
    this.held.delete(message);
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
