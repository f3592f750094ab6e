import type { AuditService } from '../audit/audit.service.ts';
import type { EventBus } from '../bus/bus.ts';
import { streams } from '../bus/contracts.ts';
import type { Config } from '../config.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { LoopLag } from '../util/loop-lag.ts';
import type { OutboxRelay } from '../util/outbox-relay.ts';
import { WebhookMatcher } from '../webhooks/webhook-matcher.ts';
import type { SecretBox } from '../util/secret-box.ts';
import type { WebhookChanges } from '../webhooks/webhook-changes.ts';
import type { WebhookService } from '../webhooks/webhook.service.ts';
import { MessageSettling } from './consumer.ts';
import type { DeliveryAttempt } from './delivery.entity.ts';
import { Dispatcher } from './dispatcher.ts';
import { DeliveryHttpClient } from './http-client.ts';
import { EndpointGate, defaultIsolation } from './isolation.ts';
import { QueueBound } from './queue-bound.ts';
import { DeliveryQueue } from './queue.ts';
import { defaultRetryPolicy } from './outcome.ts';
import { startRetention } from './retention.ts';
import { startScheduler } from './scheduler.ts';
import { AttemptJobs } from './store/attempt-jobs.ts';
import { EventDispatches } from './store/dispatches.ts';
import { FailureRecords } from './store/failures.ts';
import { OpenedSecrets } from './store/opened-secrets.ts';
import { Parking } from './store/parking.ts';
import { SuccessRecords } from './store/successes.ts';
import { DeliveryWorker } from './worker.ts';

/**
 * The delivery pipeline of a worker: the dispatcher (events → deliveries), the delivery workers
 * and the retry scheduler. `stop` lets attempts in flight finish.
 */
export function startPipeline(
  config: Config,
  deps: {
    orm: Orm;
    bus: EventBus;
    audit: AuditService;
    box: SecretBox;
    webhooks: WebhookService;
    webhookChanges: WebhookChanges;
    /** Announces recorded attempts to live consoles (the attempt outbox's relay). */
    announcements: Pick<OutboxRelay<DeliveryAttempt>, 'publish'>;
    logger: Logger;
    metrics: Metrics;
  },
) {
  const { orm, bus, audit, box, webhooks, webhookChanges, announcements, logger, metrics } = deps;
  const { delivery } = config;
  const matcher = new WebhookMatcher(orm, { ttlMs: delivery.webhookCacheTtlMs });
  const timed = { statementTimeoutMs: config.database.statementTimeoutMs };
  const parking = new Parking({ orm }, timed);
  const store = {
    jobs: new AttemptJobs({ orm, secrets: new OpenedSecrets(box) }, timed),
    parking,
    successes: new SuccessRecords({ orm }, timed),
    failures: new FailureRecords(
      { audit },
      // Like any webhook change: this process's cache drops it and the bus tells the others.
      { onWebhookDisabled: (tenantId) => webhooks.events.emit('changed', tenantId) },
    ),
  };
  const settling = new MessageSettling({ logger, isBusUnavailable: (error) => bus.isUnavailable(error) });
  const queue = new DeliveryQueue(bus, config.nats.prefix);
  const invalidations = webhookChanges.listen((tenantId) => matcher.invalidate(tenantId));
  const client = new DeliveryHttpClient(config.webhooks, {
    connectTimeoutMs: delivery.connectTimeoutMs,
    totalTimeoutMs: delivery.requestTimeoutMs,
    propagateTrace: config.tracing.propagateToEndpoints,
  });
  // How late this worker runs, so that a busy worker is not taken for slow endpoints.
  const lag = new LoopLag();
  const gate = new EndpointGate(
    {
      maxInFlight: delivery.maxInFlightPerEndpoint,
      // A hanging endpoint holds at most its slots and a quarter of the worker's.
      maxWaiting: Math.min(3 * delivery.maxInFlightPerEndpoint, Math.floor(delivery.concurrency / 4)),
      waitMs: defaultIsolation.waitMs,
      failureThreshold: delivery.circuitFailures,
      openMs: delivery.circuitOpenMs,
    },
    () => lag.ms(),
  );
  const worker = new DeliveryWorker(
    {
      bus,
      store,
      client,
      gate,
      policy: {
        ...defaultRetryPolicy,
        scheduleMs: delivery.retryScheduleMs ?? defaultRetryPolicy.scheduleMs,
        autoDisableAfterMs: delivery.autoDisableAfterMs,
      },
      settling,
      announcements,
      logger,
      metrics,
    },
    { prefix: config.nats.prefix },
  );
  const { events: eventStream, deliveries: deliveryStream } = streams(config.nats.prefix);
  const bound = new QueueBound(() => bus.backlog(deliveryStream.name), { limit: delivery.maxQueued }, logger);
  const running = [
    new Dispatcher(
      { bus, dispatches: new EventDispatches({ orm }, timed), queue, matcher, bound, settling, metrics },
      { prefix: config.nats.prefix },
    ).start(),
    worker.start(delivery.concurrency, delivery.requestTimeoutMs),
    startScheduler({ parking, queue, logger }),
    startRetention(
      orm,
      { retentionMs: delivery.retentionMs, intervalMs: delivery.retentionIntervalMs },
      logger,
    ),
  ];
  metrics.read('circuits', () => metrics.openCircuits.set(gate.openCircuits()));
  metrics.read('parked', async () => {
    const { retrying, paused } = await parking.counts();
    metrics.parked.set({ reason: 'RETRYING' }, retrying);
    metrics.parked.set({ reason: 'PAUSED' }, paused);
  });
  const consumers = [
    [eventStream.name, 'dispatcher'],
    [deliveryStream.name, 'deliverer'],
  ] as const;
  metrics.read('consumers', async () => {
    for (const [stream, consumer] of consumers) {
      const { pending, ackPending } = await bus.consumerState(stream, consumer);
      metrics.consumerPending.set({ consumer }, pending);
      metrics.consumerAckPending.set({ consumer }, ackPending);
    }
  });
  return {
    async stop() {
      invalidations.stop();
      // Dispatches waiting for room would wait for workers that are stopping too.
      bound.close();
      await Promise.all(running.map((r) => r.stop()));
      await client.close();
      lag.stop();
    },
  };
}
