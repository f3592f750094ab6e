import { setTimeout as delay } from 'node:timers/promises';
import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
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

/** Thrown at once instead of waiting out a publish timeout while the connection is down. */
export class BusUnavailableError extends Error {
  constructor() {
    super('NATS is not connected');
  }
}

const STREAM_CONFIG_CHANGED = 10058;

/** Errors of nats.js that mean the server did not answer, as opposed to refusing a message. */
const unavailable = new Set([
  'TimeoutError',
  'RequestError',
  'ConnectionError',
  'ClosedConnectionError',
  'DrainingConnectionError',
  'NoRespondersError',
  'JetStreamNotEnabled',
]);
const CONSUMER_EXISTS = 10148;

export interface NatsBusOptions {
  url: string;
  replicas: number;
  duplicateWindowMs: number;
  publishTimeoutMs?: number;
  name: string;
}

/** The production bus: NATS JetStream through nats.js v3; works with nats-server 2.9. */
export class NatsBus implements EventBus {
  readonly kind = 'nats' as const;
  private connected = true;
  private readonly streams = new Map<string, StreamSpec>();
  private readonly js: JetStreamClient;
  private readonly nc: NatsConnection;
  private readonly jsm: JetStreamManager;
  private readonly options: NatsBusOptions;
  private readonly logger: Logger;

  private constructor(nc: NatsConnection, jsm: JetStreamManager, options: NatsBusOptions, logger: Logger) {
    this.nc = nc;
    this.jsm = jsm;
    this.js = jetstream(nc);
    this.options = options;
    this.logger = logger;
    void this.watchStatus();
  }

  static async connect(options: NatsBusOptions, logger: Logger): Promise<NatsBus> {
    const nc = await connect({
      servers: options.url.split(',').map((s) => s.trim()),
      name: options.name,
      maxReconnectAttempts: -1,
      reconnectTimeWait: 1000,
      // A stack captured for every request (each JetStream publish) is most of its cost.
      noAsyncTraces: true,
    }).catch((error: unknown) => {
      throw new Error(`cannot reach NATS at ${options.url}: ${String(error)}`, { cause: error });
    });
    return new NatsBus(nc, await jetstreamManager(nc), options, logger);
  }

  async declareStreams(specs: StreamSpec[]): Promise<void> {
    for (const spec of specs) {
      this.streams.set(spec.name, spec);
      const config: Partial<StreamConfig> & { name: string } = {
        name: spec.name,
        subjects: spec.subjects,
        storage: StorageType.File,
        retention: spec.retention === 'workqueue' ? RetentionPolicy.Workqueue : RetentionPolicy.Limits,
        discard: DiscardPolicy.Old,
        max_age: nanos(spec.maxAgeMs),
        // JetStream refuses a duplicate window longer than what the stream keeps.
        duplicate_window: nanos(
          Math.min(this.options.duplicateWindowMs, spec.duplicateWindowMs ?? Infinity, spec.maxAgeMs),
        ),
        num_replicas: this.options.replicas,
        max_msgs_per_subject: spec.maxPerSubject ?? -1,
      };
      try {
        await this.jsm.streams.add(config);
      } catch (error) {
        if (!(error instanceof JetStreamApiError && error.code === STREAM_CONFIG_CHANGED)) throw error;
        // Retention and storage cannot change in place; everything else is updated.
        const { retention: _r, storage: _s, ...mutable } = config;
        await this.jsm.streams.update(spec.name, mutable);
      }
    }
  }

  async publish(
    subject: string,
    data: Uint8Array,
    options: { msgId: string; headers?: MessageHeaders },
  ): Promise<PublishAck> {
    if (!this.connected || this.nc.isClosed()) throw new BusUnavailableError();
    const ack = await this.js.publish(subject, data, {
      msgID: options.msgId,
      timeout: this.options.publishTimeoutMs ?? 5000,
      ...(options.headers && Object.keys(options.headers).length > 0
        ? { headers: toNatsHeaders(options.headers) }
        : {}),
    });
    return { seq: ack.seq, duplicate: ack.duplicate };
  }

  consume(spec: ConsumerSpec, handler: MessageHandler, options: { concurrency: number }): Consumption {
    const running = new Set<Promise<void>>();
    const inProgress = new InProgress(spec);
    let stopped = false;
    let stopCurrent: (() => void) | undefined;

    const loop = async () => {
      while (!stopped) {
        try {
          await this.declareConsumer(spec);
          const consumer = await this.js.consumers.get(spec.stream, spec.durable);
          // Pull requests live on the consumer's leader: if that node dies, a client still
          // connected to the others only notices when its request expires. 5 s instead of the
          // default 30 s bounds that stall (seen on a 3-node cluster losing the leader).
          // Up to `concurrency` more wait in the client for a handler, not yet reported in
          // progress: only a consumption whose every handler is held past the ack wait lets one
          // of them come back (a prefetch of 64 cost a drain 6 %).
          const messages = await consumer.consume({ max_messages: options.concurrency, expires: 5_000 });
          stopCurrent = () => messages.stop();
          // stop() may have run while consume() was pending: it could not reach this iterator.
          if (stopped) messages.stop();
          for await (const msg of messages) {
            const task = settle(msg, handler, this.logger, inProgress).finally(() => running.delete(task));
            running.add(task);
            if (running.size >= options.concurrency) await Promise.race(running);
          }
        } catch (error) {
          if (stopped) break;
          this.logger.error({ err: error, consumer: spec.durable }, 'consumer failed; resubscribing in 1 s');
          await delay(1000);
        }
      }
    };
    const looping = loop();

    return {
      stop: async () => {
        stopped = true;
        stopCurrent?.();
        await looping;
        await Promise.allSettled([...running]);
        inProgress.stop();
      },
    };
  }

  /**
   * An ordered consumer on the stream from its current end: it sees only what the stream stored (a
   * core subscription would also see publishes the stream dropped as duplicates). After a
   * reconnect, or if nats.js gives up on it, it is recreated from the last sequence it delivered.
   * (An ordered consumer made with DeliverPolicy.New would restart from sequence 1 if it were
   * reset before its first message.)
   */
  subscribe(subject: string, handler: (message: LiveMessage) => void): Subscription {
    const stream = this.streamOf(subject);
    let stopped = false;
    let stopCurrent: (() => void) | undefined;
    let current: { delete(): Promise<boolean> } | undefined;
    let lastSeq: number | undefined;
    let markReady: (seq: number) => void = () => {};
    const ready = new Promise<number>((resolve) => (markReady = resolve));
    const run = async () => {
      while (!stopped) {
        try {
          lastSeq ??= (await this.jsm.streams.info(stream)).state.last_seq;
          // nats-server 2.9 takes one filter subject, as a string.
          const consumer = await this.js.consumers.get(stream, {
            filter_subjects: subject,
            deliver_policy: DeliverPolicy.StartSequence,
            opt_start_seq: lastSeq + 1,
          });
          current = consumer;
          markReady(lastSeq);
          const messages = await consumer.consume();
          stopCurrent = () => messages.stop();
          if (stopped) messages.stop();
          for await (const msg of messages) {
            lastSeq = msg.seq;
            handler({ subject: msg.subject, data: msg.data, seq: msg.seq });
          }
        } catch (error) {
          if (stopped) return;
          this.logger.warn({ err: error, subject }, 'live subscription failed; retrying in 1 s');
          await delay(1000);
        }
      }
    };
    void run();
    return {
      ready,
      unsubscribe: () => {
        stopped = true;
        stopCurrent?.();
        // The server would keep an idle ordered consumer for minutes.
        void current?.delete().catch(() => false);
      },
    };
  }

  async replay(
    subject: string,
    range: { afterSeq: number; untilSeq: number; limit: number },
  ): Promise<LiveMessage[]> {
    const { afterSeq, untilSeq, limit } = range;
    const stream = this.streamOf(subject);
    const { state } = await this.jsm.streams.info(stream);
    if (afterSeq > state.last_seq) {
      throw new ReplayRefusedError('ahead', `sequence ${afterSeq} is beyond the end of the stream`);
    }
    if (afterSeq + 1 < state.first_seq) {
      throw new ReplayRefusedError('expired', `messages after sequence ${afterSeq} are no longer kept`);
    }
    if (untilSeq <= afterSeq) return [];
    const consumer = await this.js.consumers.get(stream, {
      filter_subjects: subject,
      deliver_policy: DeliverPolicy.StartSequence,
      opt_start_seq: afterSeq + 1,
    });
    try {
      const pending = (await consumer.info(true)).num_pending;
      const replayed: LiveMessage[] = [];
      if (pending === 0) return replayed;
      const messages = await consumer.fetch({ max_messages: Math.min(pending, limit + 1), expires: 5_000 });
      for await (const msg of messages) {
        if (msg.seq > untilSeq) break;
        replayed.push({ subject: msg.subject, data: msg.data, seq: msg.seq });
        if (replayed.length > limit) {
          throw new ReplayRefusedError('too-many', `more than ${limit} messages after sequence ${afterSeq}`);
        }
        if (msg.seq === untilSeq || msg.info.pending === 0) break;
      }
      // Messages that expired while being read were skipped: that is a gap, not an empty range.
      if (afterSeq + 1 < (await this.jsm.streams.info(stream)).state.first_seq) {
        throw new ReplayRefusedError('expired', `messages after sequence ${afterSeq} are no longer kept`);
      }
      return replayed;
    } finally {
      await consumer.delete().catch(() => false);
    }
  }

  async last(subject: string): Promise<LiveMessage | null> {
    if (!this.connected || this.nc.isClosed()) throw new BusUnavailableError();
    const stored = await this.jsm.streams.getMessage(this.streamOf(subject), { last_by_subj: subject });
    return stored && { subject: stored.subject, data: stored.data, seq: stored.seq };
  }

  async backlog(stream: string): Promise<number> {
    if (!this.connected || this.nc.isClosed()) throw new BusUnavailableError();
    return (await this.jsm.streams.info(stream)).state.messages;
  }

  async consumerState(stream: string, durable: string): Promise<{ pending: number; ackPending: number }> {
    if (!this.connected || this.nc.isClosed()) throw new BusUnavailableError();
    try {
      const info = await this.jsm.consumers.info(stream, durable);
      return { pending: info.num_pending, ackPending: info.num_ack_pending };
    } catch (error) {
      if (error instanceof JetStreamApiError && error.code === JetStreamApiCodes.ConsumerNotFound) {
        return { pending: 0, ackPending: 0 };
      }
      throw error;
    }
  }

  isUnavailable(error: unknown): boolean {
    return error instanceof BusUnavailableError || (error instanceof Error && unavailable.has(error.name));
  }

  async ping(): Promise<void> {
    if (!this.connected || this.nc.isClosed()) throw new BusUnavailableError();
    await this.nc.rtt();
  }

  /** Drains when connected; while disconnected there is nothing to drain, so it just closes. */
  async close(): Promise<void> {
    if (this.nc.isClosed()) return;
    if (!this.connected) return this.nc.close();
    try {
      await this.nc.drain();
    } catch {
      await this.nc.close();
    }
  }

  private streamOf(subject: string): string {
    for (const spec of this.streams.values()) {
      if (spec.subjects.some((filter) => subjectMatches(filter, subject))) return spec.name;
    }
    throw new Error(`no declared stream captures subject ${subject}`);
  }

  private async declareConsumer(spec: ConsumerSpec): Promise<void> {
    const config: Partial<ConsumerConfig> & { durable_name: string } = {
      durable_name: spec.durable,
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.All,
      ack_wait: nanos(spec.ackWaitMs),
      max_deliver: spec.maxDeliver,
      max_ack_pending: spec.maxAckPending,
      ...(spec.filterSubject ? { filter_subject: spec.filterSubject } : {}),
    };
    try {
      await this.jsm.consumers.add(spec.stream, config);
    } catch (error) {
      // nats-server 2.10+ refuses to "create" over a changed config; 2.9 updates in place.
      if (!(error instanceof JetStreamApiError && error.code === CONSUMER_EXISTS)) throw error;
      const { durable_name, deliver_policy: _d, ...mutable } = config;
      await this.jsm.consumers.update(spec.stream, durable_name, mutable);
    }
  }

  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') {
        this.connected = false;
        this.logger.error({ server: this.options.url }, 'NATS disconnected; reconnecting');
      } else if (status.type === 'reconnect') {
        this.connected = true;
        this.logger.info({ server: this.options.url }, 'NATS reconnected');
      }
    }
  }
}

/** A handler that returns without settling acks; one that throws is logged and naked (MessageHandler). */
async function settle(
  msg: JsMsg,
  handler: MessageHandler,
  logger: Logger,
  inProgress: InProgress,
): Promise<void> {
  let settled = false;
  const once = (fn: () => void) => () => {
    if (settled) return;
    settled = true;
    fn();
  };
  const message: BusMessage = {
    subject: msg.subject,
    data: msg.data,
    headers: fromNatsHeaders(msg.headers),
    seq: msg.seq,
    deliveryCount: msg.info.deliveryCount,
    ack: once(() => msg.ack()),
    nak: (delayMs) => once(() => msg.nak(delayMs))(),
    // No reason: nats-server 2.9 ignores a term with a reason and redelivers.
    term: once(() => msg.term()),
    working: () => {
      if (!settled) msg.working();
    },
  };
  inProgress.hold(message);
  try {
    await handler(message);
    message.ack();
  } catch (error) {
    logger.error({ err: error, subject: msg.subject }, 'a message handler threw; the message comes back');
    message.nak(retryBackoffMs(message.deliveryCount));
  } finally {
    inProgress.release(message);
  }
}

function toNatsHeaders(headers: MessageHeaders): MsgHdrs {
  const converted = natsHeaders();
  for (const [name, value] of Object.entries(headers)) converted.set(name, value);
  return converted;
}

/** The publisher's headers; those NATS adds itself (Nats-Msg-Id and the like) are left out. */
function fromNatsHeaders(headers: MsgHdrs | undefined): MessageHeaders {
  const read: Record<string, string> = {};
  for (const [name, values] of headers ?? []) {
    // Lower-cased, as the contract says: a host's `Traceparent` is the propagator's `traceparent`.
    const lower = name.toLowerCase();
    if (!lower.startsWith('nats-') && values[0] !== undefined) read[lower] = values[0];
  }
  return read;
}
