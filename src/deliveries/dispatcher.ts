import type { BusMessage, Consumption, EventBus } from '../bus/bus.ts';
import { eventMessageV1, streams, subjects } from '../bus/contracts.ts';
import { idTime } from '../db/ids.ts';
import { fromMessage } from '../events/published-event.ts';
import type { Metrics } from '../metrics.ts';
import { annotate, consuming, recordFailure } from '../tracing.ts';
import type { WebhookMatcher } from '../webhooks/webhook-matcher.ts';
import type { MessageSettling } from './consumer.ts';
import type { QueueBound } from './queue-bound.ts';
import type { DeliveryQueue } from './queue.ts';
import type { EventDispatches } from './store/dispatches.ts';

type Stage = 'match' | 'dispatch' | 'queue';

type DispatchMetrics = Pick<Metrics, 'dispatched' | 'dispatchLagSeconds'>;

/**
 * Turns events into deliveries: for each event on the stream, one delivery per active webhook of
 * the tenant subscribed to its type, each queued for the workers. The event message is acked only
 * once its deliveries are stored and queued; a redelivered event creates nothing twice and
 * re-queues what was not attempted yet. While the delivery queue is full (QueueBound) it waits,
 * and the events behind it wait on their stream.
 */
export class Dispatcher {
  private readonly bus: EventBus;
  private readonly dispatches: Pick<EventDispatches, 'create'>;
  private readonly queue: Pick<DeliveryQueue, 'enqueue'>;
  private readonly matcher: Pick<WebhookMatcher, 'matching'>;
  private readonly bound: Pick<QueueBound, 'tryAdmit' | 'admit' | 'landed'>;
  private readonly settling: MessageSettling;
  private readonly metrics: DispatchMetrics;
  private readonly prefix: string;
  private readonly subjectOf: (event: { tenantId: string; type: string }) => string;

  constructor(
    deps: {
      bus: EventBus;
      dispatches: Pick<EventDispatches, 'create'>;
      queue: Pick<DeliveryQueue, 'enqueue'>;
      matcher: Pick<WebhookMatcher, 'matching'>;
      bound: Pick<QueueBound, 'tryAdmit' | 'admit' | 'landed'>;
      settling: MessageSettling;
      metrics: DispatchMetrics;
    },
    options: { prefix: string },
  ) {
    this.bus = deps.bus;
    this.dispatches = deps.dispatches;
    this.queue = deps.queue;
    this.matcher = deps.matcher;
    this.bound = deps.bound;
    this.settling = deps.settling;
    this.metrics = deps.metrics;
    this.prefix = options.prefix;
    const { event } = subjects(options.prefix);
    this.subjectOf = ({ tenantId, type }) => event(tenantId, type);
  }

  start(concurrency = 256): Consumption {
    return this.bus.consume(
      {
        stream: streams(this.prefix).events.name,
        durable: 'dispatcher',
        // How soon a dead dispatcher's events come back; the bus keeps running ones from it,
        // waiting for room in the delivery queue included.
        ackWaitMs: 3_000,
        // Waiting for room is the backpressure and lasts as long as the workers are behind; only
        // a dispatch held for an hour is taken as stuck.
        maxWorkMs: 3_600_000,
        maxDeliver: 1_000,
        maxAckPending: concurrency * 4,
      },
      (message) => consuming('dispatch', message, () => this.handle(message)),
      { concurrency },
    );
  }

  /** Settles the message once: acked when done (returning), given up, or retried later. */
  private async handle(message: BusMessage): Promise<void> {
    const read = this.settling.read(message, eventMessageV1, 'an event');
    if (!read) return;
    const event = fromMessage(read);
    annotate({
      'herald.event.id': event.id,
      'herald.event.type': event.type,
      'herald.tenant.id': event.tenantId,
    });
    // The subject is what a tenant's stream filter and permissions see: a body naming another
    // tenant (or type) must not reach that tenant's webhooks.
    if (message.subject.toLowerCase() !== this.subjectOf(event).toLowerCase()) {
      return this.settling.giveUp(message, 'dropped an event whose subject names another tenant or type', {
        eventId: event.id,
        tenantId: event.tenantId,
        type: event.type,
      });
    }
    let stage: Stage = 'match';
    try {
      const webhookIds = await this.matcher.matching(event.tenantId, event.type);
      // The process is stopping: the event comes back, to this process or another.
      if (!(await this.room(webhookIds.length))) return message.nak();
      try {
        stage = 'dispatch';
        const deliveries = await this.dispatches.create(event, webhookIds);
        annotate({ 'herald.deliveries': deliveries.length });
        stage = 'queue';
        // Every publish settled before landed(): one still in flight would be counted nowhere.
        const queued = await Promise.allSettled(deliveries.map((delivery) => this.queue.enqueue(delivery)));
        const failed = queued.find((result) => result.status === 'rejected');
        if (failed) throw failed.reason;
        this.metrics.dispatched.inc(deliveries.length);
        // Herald's ids carry their time; a host publishing to the stream itself may use others.
        const storedAt = idTime(event.id);
        if (storedAt !== null)
          this.metrics.dispatchLagSeconds.observe(Math.max(0, Date.now() - storedAt) / 1000);
      } finally {
        this.bound.landed(webhookIds.length);
      }
    } catch (error) {
      recordFailure(error);
      this.settling.retryLater(message, { what: 'dispatch', stage, error }, { eventId: event.id });
    }
  }

  /** Room in the delivery queue for `count` deliveries: at once, or once the workers made it. */
  private async room(count: number): Promise<boolean> {
    return count === 0 || this.bound.tryAdmit(count) || this.bound.admit(count);
  }
}
