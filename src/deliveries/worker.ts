import { scopedPayload } from '../apps/data-scopes.ts';
import type { BusMessage, Consumption, EventBus } from '../bus/bus.ts';
import { deliveryMessageV1, streams, type DeliveryMessage } from '../bus/contracts.ts';
import { newId } from '../db/ids.ts';
import type { Logger } from '../logger.ts';
import { responseClass, type Metrics } from '../metrics.ts';
import { annotate, consuming, recordFailure } from '../tracing.ts';
import type { OutboxRelay } from '../util/outbox-relay.ts';
import type { MessageSettling } from './consumer.ts';
import type { DeliveryAttempt } from './delivery.entity.ts';
import type { AttemptOutcome, DeliveryHttpClient } from './http-client.ts';
import type { EndpointGate } from './isolation.ts';
import { decide, parkUntil, succeeded, type RetryPolicy } from './outcome.ts';
import { signatureHeaders } from './signing.ts';
import type { AttemptJob, AttemptJobs } from './store/attempt-jobs.ts';
import type { FailureRecords } from './store/failures.ts';
import type { Parking } from './store/parking.ts';
import type { SuccessRecords } from './store/successes.ts';

/** What the worker stores and reads. */
export interface AttemptStore {
  jobs: Pick<AttemptJobs, 'load'>;
  parking: Pick<Parking, 'park' | 'pause' | 'abandon'>;
  successes: Pick<SuccessRecords, 'record'>;
  failures: Pick<FailureRecords, 'record'>;
}

type Stage = 'prepare' | 'park' | 'send' | 'record';

type AttemptMetrics = Pick<Metrics, 'attempts' | 'attemptSeconds' | 'attemptsInFlight' | 'settled'>;

/**
 * How soon the messages of a worker that died come back: the bus reports a message in progress
 * while its attempt runs (even one waiting 15 s on an endpoint), so a short wait costs no repeat.
 */
export const ACK_WAIT_MS = 3_000;

/**
 * Makes delivery attempts, as a chain of small steps: prepare (load, check), send (sign, POST),
 * record (attempt, status, webhook). `decide` (outcome.ts) alone says what an outcome means.
 * Waiting retries are parked in the database, not held here: every message is acked once its
 * outcome is stored, and one whose step failed comes back (MessageSettling).
 */
export class DeliveryWorker {
  private readonly bus: EventBus;
  private readonly store: AttemptStore;
  private readonly client: DeliveryHttpClient;
  private readonly gate: EndpointGate;
  private readonly policy: RetryPolicy;
  private readonly settling: MessageSettling;
  private readonly announcements: Pick<OutboxRelay<DeliveryAttempt>, 'publish'>;
  private readonly logger: Logger;
  private readonly metrics: AttemptMetrics;
  private readonly prefix: string;

  constructor(
    deps: {
      bus: EventBus;
      store: AttemptStore;
      client: DeliveryHttpClient;
      gate: EndpointGate;
      policy: RetryPolicy;
      settling: MessageSettling;
      announcements: Pick<OutboxRelay<DeliveryAttempt>, 'publish'>;
      logger: Logger;
      metrics: AttemptMetrics;
    },
    options: { prefix: string },
  ) {
    this.bus = deps.bus;
    this.store = deps.store;
    this.client = deps.client;
    this.gate = deps.gate;
    this.policy = deps.policy;
    this.settling = deps.settling;
    this.announcements = deps.announcements;
    this.logger = deps.logger;
    this.metrics = deps.metrics;
    this.prefix = options.prefix;
  }

  /** `requestTimeoutMs` bounds an attempt: a handler holding its message much longer is stuck. */
  start(concurrency: number, requestTimeoutMs: number): Consumption {
    return this.bus.consume(
      {
        stream: streams(this.prefix).deliveries.name,
        durable: 'deliverer',
        ackWaitMs: ACK_WAIT_MS,
        // Far past an attempt (the request timeout) and its wait in line, which the worker's own
        // lateness may stretch: a handler holding its message this long is stuck.
        maxWorkMs: requestTimeoutMs + 600_000,
        maxDeliver: 10_000,
        maxAckPending: concurrency * 4,
      },
      (message) => consuming('delivery.attempt', message, () => this.handle(message)),
      { concurrency },
    );
  }

  /** Settles the message once: acked when done (returning), given up, or retried later. */
  private async handle(message: BusMessage): Promise<void> {
    const job = this.settling.read(message, deliveryMessageV1, 'a delivery message');
    if (!job) return;
    annotate({
      'herald.delivery.id': job.deliveryId,
      'herald.attempt': job.attempt,
      'herald.webhook.id': job.webhookId,
      'herald.tenant.id': job.tenantId,
    });
    let stage: Stage = 'prepare';
    try {
      const prepared = await this.prepare(job);
      if (!prepared) return;

      const endpoint = prepared.webhook!.id;
      const openUntil = this.gate.openUntil(endpoint);
      // Parked deliveries wait in the database and hold neither a slot nor an unacked message.
      if (openUntil) {
        stage = 'park';
        return await this.store.parking.park(
          prepared.delivery,
          parkUntil.circuitOpen(openUntil, this.gate.openMs),
        );
      }
      if (!(await this.slot(endpoint))) {
        stage = 'park';
        return await this.store.parking.park(
          prepared.delivery,
          parkUntil.noSlot(this.gate.openUntil(endpoint), Date.now()),
        );
      }

      stage = 'send';
      const at = new Date();
      let outcome: AttemptOutcome | undefined;
      this.metrics.attemptsInFlight.inc();
      try {
        outcome = await this.send(prepared, at);
      } finally {
        this.metrics.attemptsInFlight.dec();
        this.gate.release(endpoint, outcome ? succeeded(outcome) : false, outcome?.durationMs ?? Infinity);
      }
      stage = 'record';
      await this.record(prepared, job.attempt, outcome, at);
    } catch (error) {
      recordFailure(error);
      this.settling.retryLater(
        message,
        { what: 'a delivery attempt', stage, error },
        { deliveryId: job.deliveryId, attempt: job.attempt },
      );
    }
  }

  /** The job, or null when this message has nothing left to do (a repeat, or the work is gone). */
  private async prepare(job: DeliveryMessage): Promise<AttemptJob | null> {
    const prepared = await this.store.jobs.load(job.deliveryId);
    if (!prepared) return null;
    const { delivery, webhook, event } = prepared;
    // A message for an attempt already made, or a delivery already settled, is a repeat.
    if (
      delivery.attempts + 1 !== job.attempt ||
      delivery.status === 'SUCCEEDED' ||
      delivery.status === 'FAILED'
    ) {
      return null;
    }
    if (!webhook || !event) {
      await this.abandon(delivery, webhook ? 'the event is gone' : 'the webhook was deleted');
      return null;
    }
    if (!webhook.isActive) {
      await this.abandon(delivery, `the webhook is disabled: ${webhook.disabledReason ?? 'no reason given'}`);
      return null;
    }
    if (prepared.tenantSuspended) {
      await this.store.parking.pause(delivery);
      return null;
    }
    return prepared;
  }

  /** Ends a delivery without an attempt; counted once, by the call that ended it. */
  private async abandon(delivery: AttemptJob['delivery'], reason: string): Promise<void> {
    if (await this.store.parking.abandon(delivery, reason)) this.metrics.settled.inc({ status: 'FAILED' });
  }

  /** A slot of the endpoint's: at once, or after waiting in line; false when none came (park it). */
  private async slot(endpoint: string): Promise<boolean> {
    return this.gate.tryAcquire(endpoint) || this.gate.acquire(endpoint);
  }

  private async send(
    { delivery, webhook, event, secrets, fieldScopes }: AttemptJob,
    at: Date,
  ): Promise<AttemptOutcome> {
    // An app's webhook gets only the fields its scopes allow; the signature covers what is sent.
    const { current, previous } = webhook!.dataScopes
      ? scopedPayload(
          {
            module: event!.module ?? null,
            model: event!.model,
            current: event!.current,
            previous: event!.previous,
          },
          fieldScopes,
          new Set(webhook!.dataScopes),
        )
      : event!;
    const body = JSON.stringify({
      id: event!.id,
      type: event!.type,
      timestamp: event!.occurredAt.toISOString(),
      tenantId: event!.tenantId,
      meta: { module: event!.module ?? null, model: event!.model, action: event!.action },
      current: current ?? null,
      previous: previous ?? null,
    });
    return this.client.post(webhook!.url, { ...signatureHeaders(secrets, delivery.id, at, body) }, body);
  }

  private async record(job: AttemptJob, attempt: number, outcome: AttemptOutcome, at: Date): Promise<void> {
    const settlement = decide(outcome, attempt, job.webhook!, this.policy, new Date());
    const { status } = settlement;
    annotate({ 'herald.delivery.status': status, 'herald.outcome': responseClass(outcome) });
    this.metrics.attempts.inc({ status, response: responseClass(outcome) });
    this.metrics.attemptSeconds.observe({ status }, outcome.durationMs / 1000);
    const row: DeliveryAttempt = {
      id: newId(),
      tenantId: job.delivery.tenantId,
      deliveryId: job.delivery.id,
      webhookId: job.delivery.webhookId,
      attempt,
      status: settlement.status,
      url: job.webhook!.url,
      statusCode: outcome.kind === 'response' ? outcome.statusCode : null,
      responseTimeMs: outcome.durationMs,
      response: outcome.kind === 'response' ? outcome.body : null,
      errorClass: outcome.kind === 'error' ? outcome.errorClass : null,
      error: outcome.kind === 'error' ? outcome.message.slice(0, 1000) : null,
      createdAt: at,
    };
    const stored =
      settlement.status === 'SUCCEEDED'
        ? await this.store.successes.record(row)
        : await this.store.failures.record(job, row, settlement);
    if (!stored) {
      this.logger.debug({ deliveryId: job.delivery.id, attempt }, 'attempt already recorded by a repeat');
      return;
    }
    if (status !== 'RETRYING') this.metrics.settled.inc({ status });
    // Stored with its outbox entry: announced now, without holding the message for the stream's
    // ack, or by the relay should this fail. Only the call that stored the attempt gets here.
    void this.announcements.publish([stored]);
  }
}
