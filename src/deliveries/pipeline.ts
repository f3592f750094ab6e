import type { AuditService } from '../audit/audit.service.ts';
import type { EventBus } from '../bus/bus.ts';
import { decode, subjects, webhooksChangedV1 } from '../bus/contracts.ts';
import type { Config } from '../config.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { WebhookMatcher } from '../webhooks/webhook-matcher.ts';
import type { SecretBox } from '../webhooks/webhook-secret.ts';
import type { WebhookService } from '../webhooks/webhook.service.ts';
import { DeliveryStore } from './delivery-store.ts';
import { Dispatcher } from './dispatcher.ts';
import { DeliveryHttpClient } from './http-client.ts';
import { EndpointGate, defaultIsolation } from './isolation.ts';
import { DeliveryQueue } from './queue.ts';
import { startRetention } from './retention.ts';
import { defaultRetryPolicy } from './retry-schedule.ts';
import { startScheduler } from './scheduler.ts';
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
    logger: Logger;
  },
) {
  const { orm, bus, audit, box, webhooks, logger } = deps;
  const { delivery } = config;
  const matcher = new WebhookMatcher(orm, { ttlMs: delivery.webhookCacheTtlMs });
  const store = new DeliveryStore(
    { orm, audit, box },
    {
      autoDisableAfterMs: delivery.autoDisableAfterMs,
      statementTimeoutMs: config.database.statementTimeoutMs,
      // Like any webhook change: this process's cache drops it and the bus tells the others.
      onWebhookDisabled: (tenantId) => webhooks.events.emit('changed', tenantId),
    },
  );
  const queue = new DeliveryQueue(bus, config.nats.prefix);
  webhooks.events.on('changed', (tenantId) => matcher.invalidate(tenantId));
  // Changes made in other processes (the API) arrive on the bus; the cache's TTL covers a lost one.
  const subject = subjects(config.nats.prefix);
  const invalidations = bus.subscribe(subject.webhooksChanged('*'), (message) => {
    try {
      matcher.invalidate(decode(webhooksChangedV1, message.data).tenantId);
    } catch (error) {
      logger.warn({ err: error }, 'dropped a cache invalidation that breaks its contract');
    }
  });
  const client = new DeliveryHttpClient(config.webhooks, {
    connectTimeoutMs: delivery.connectTimeoutMs,
    totalTimeoutMs: delivery.requestTimeoutMs,
  });
  const worker = new DeliveryWorker(
    {
      bus,
      store,
      client,
      gate: new EndpointGate({
        maxInFlight: delivery.maxInFlightPerEndpoint,
        // A hanging endpoint holds at most its slots and a quarter of the worker's.
        maxWaiting: Math.min(3 * delivery.maxInFlightPerEndpoint, Math.floor(delivery.concurrency / 4)),
        waitMs: defaultIsolation.waitMs,
        failureThreshold: delivery.circuitFailures,
        openMs: delivery.circuitOpenMs,
      }),
      policy: {
        ...defaultRetryPolicy,
        scheduleMs: delivery.retryScheduleMs ?? defaultRetryPolicy.scheduleMs,
      },
      logger,
    },
    { prefix: config.nats.prefix },
  );
  const running = [
    new Dispatcher({ bus, store, queue, matcher, logger }, { prefix: config.nats.prefix }).start(),
    // An attempt holds its message for at most the request timeout, then a short write.
    worker.start(delivery.concurrency, delivery.requestTimeoutMs + 10_000),
    startScheduler({ store, queue, logger }),
    startRetention(
      orm,
      { retentionMs: delivery.retentionMs, intervalMs: delivery.retentionIntervalMs },
      logger,
    ),
  ];
  return {
    async stop() {
      invalidations.unsubscribe();
      await Promise.all(running.map((r) => r.stop()));
      await client.close();
    },
  };
}
