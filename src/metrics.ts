import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from './logger.ts';

/** Values read when Prometheus scrapes (counts in the database, consumers' backlogs), by name. */
interface Reading {
  name: string;
  take: () => void | Promise<void>;
}

/** A reading still running after this is given up: the scrape answers with the last values. */
const READING_DEADLINE_MS = 5_000;

/** Seconds, from a fast local answer to the attempt timeout. */
const ATTEMPT_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15, 30];
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** From an event stored to its deliveries queued: milliseconds when keeping up, hours in a backlog. */
const LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/**
 * Herald's Prometheus metrics, one registry per running app (tests run several in one process).
 * Labels take bounded values only: a status, an outcome, a root field of the schema, never a
 * tenant, a URL or an id. README "Monitoring" lists them.
 */
export class Metrics {
  readonly registry = new Registry();
  private readonly readings: Reading[] = [];
  private readonly logger: Logger;
  private readonly minReadingIntervalMs: number;
  private reading: Promise<void> | null = null;
  private readAt = -Infinity;

  readonly attempts: Counter<'status' | 'response'>;
  readonly attemptSeconds: Histogram<'status'>;
  readonly attemptsInFlight: Gauge;
  readonly settled: Counter<'status'>;
  readonly parked: Gauge<'reason'>;
  readonly openCircuits: Gauge;
  readonly dispatched: Counter;
  readonly dispatchLagSeconds: Histogram;
  readonly consumerPending: Gauge<'consumer'>;
  readonly consumerAckPending: Gauge<'consumer'>;
  readonly outboxEntries: Gauge<'outbox'>;
  readonly liveSubscribers: Gauge;
  readonly liveFramesSent: Counter;
  readonly liveFramesDropped: Counter;
  readonly graphqlOperations: Counter<'type' | 'field' | 'result'>;
  readonly graphqlSeconds: Histogram<'type' | 'field'>;
  readonly inboundRequests: Counter<'outcome'>;
  readonly httpRequests: Counter<'route' | 'code'>;
  readonly httpSeconds: Histogram<'route'>;
  readonly readingFailures: Counter<'reading'>;

  /**
   * `minReadingIntervalMs`: scrapes closer together than this (several Prometheus servers, or a
   * short interval) share one set of readings, so the database sees at most one set per interval.
   */
  constructor(deps: { logger: Logger }, options: { role: string; minReadingIntervalMs?: number }) {
    this.logger = deps.logger;
    this.minReadingIntervalMs = options.minReadingIntervalMs ?? 1_000;
    const registers = [this.registry];
    this.registry.setDefaultLabels({ role: options.role });
    collectDefaultMetrics({ register: this.registry });

    this.attempts = new Counter({
      name: 'herald_delivery_attempts_total',
      help: "Delivery attempts made (a repeat's included: each is a request sent), by the delivery status they led to (SUCCEEDED, RETRYING, FAILED) and the response class (2xx…5xx) or error class (timeout, connect, dns, tls, ssrf, network).",
      labelNames: ['status', 'response'],
      registers,
    });
    this.attemptSeconds = new Histogram({
      name: 'herald_delivery_attempt_duration_seconds',
      help: "Time from an attempt's request to its endpoint's answer (or error), by the status it led to.",
      labelNames: ['status'],
      buckets: ATTEMPT_BUCKETS,
      registers,
    });
    this.attemptsInFlight = new Gauge({
      name: 'herald_delivery_attempts_in_flight',
      help: 'Attempts this worker is making now.',
      registers,
    });
    this.settled = new Counter({
      name: 'herald_deliveries_settled_total',
      help: 'Deliveries that reached their end, by status: SUCCEEDED, or FAILED (given up after attempts, or ended without one: webhook deleted or disabled, event gone).',
      labelNames: ['status'],
      registers,
    });
    this.parked = new Gauge({
      name: 'herald_deliveries_parked',
      help: 'Deliveries waiting in the database: RETRYING (due later) and PAUSED (tenant suspended).',
      labelNames: ['reason'],
      registers,
    });
    this.openCircuits = new Gauge({
      name: 'herald_circuits_open',
      help: 'Endpoints whose circuit is open in this worker: their deliveries are parked, not sent.',
      registers,
    });
    this.dispatched = new Counter({
      name: 'herald_deliveries_dispatched_total',
      help: 'Deliveries queued by this dispatcher, one per event and subscribed webhook (an event redelivered queues its unattempted deliveries again).',
      registers,
    });
    this.dispatchLagSeconds = new Histogram({
      name: 'herald_dispatch_lag_seconds',
      help: 'Time from an event stored to its deliveries queued for the workers.',
      buckets: LAG_BUCKETS,
      registers,
    });
    this.consumerPending = new Gauge({
      name: 'herald_consumer_pending_messages',
      help: 'Messages of a stream not yet handed to its consumer (dispatcher: events; deliverer: deliveries).',
      labelNames: ['consumer'],
      registers,
    });
    this.consumerAckPending = new Gauge({
      name: 'herald_consumer_ack_pending_messages',
      help: 'Messages handed to a consumer and not yet settled.',
      labelNames: ['consumer'],
      registers,
    });
    this.outboxEntries = new Gauge({
      name: 'herald_outbox_entries',
      help: 'Committed items not yet on the bus, by outbox (events, audit, inbound, attempts).',
      labelNames: ['outbox'],
      registers,
    });
    this.liveSubscribers = new Gauge({
      name: 'herald_live_subscribers',
      help: 'Live subscriptions open in this API process (graphql-ws and SSE).',
      registers,
    });
    this.liveFramesSent = new Counter({
      name: 'herald_live_frames_sent_total',
      help: 'Items handed to live subscribers.',
      registers,
    });
    this.liveFramesDropped = new Counter({
      name: 'herald_live_frames_dropped_total',
      help: 'Items dropped because their subscriber fell too far behind (it is ended with SLOW_SUBSCRIBER).',
      registers,
    });
    this.graphqlOperations = new Counter({
      name: 'herald_graphql_operations_total',
      help: 'GraphQL operations by type, first root field and result: ok, error (the response carried errors), invalid (did not parse or validate), refused (unauthenticated or rate-limited).',
      labelNames: ['type', 'field', 'result'],
      registers,
    });
    this.graphqlSeconds = new Histogram({
      name: 'herald_graphql_operation_duration_seconds',
      help: 'Execution time of GraphQL queries and mutations, by root field.',
      labelNames: ['type', 'field'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.inboundRequests = new Counter({
      name: 'herald_inbound_requests_total',
      help: "Requests to inbound sources' URLs, by outcome (ROUTED, UNAUTHORIZED, RATE_LIMITED…).",
      labelNames: ['outcome'],
      registers,
    });
    this.httpRequests = new Counter({
      name: 'herald_http_requests_total',
      help: 'HTTP requests answered, by route and status class.',
      labelNames: ['route', 'code'],
      registers,
    });
    this.httpSeconds = new Histogram({
      name: 'herald_http_request_duration_seconds',
      help: 'Time from an HTTP request to its answer written, by route (long-lived SSE streams included).',
      labelNames: ['route'],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.readingFailures = new Counter({
      name: 'herald_metrics_reading_failures_total',
      help: 'Scrape-time readings that failed or ran past 5 s, by reading (parked, consumers, outboxes…): their gauges keep the last values read.',
      labelNames: ['reading'],
      registers,
    });
  }

  /** Adds a reading taken when scraped (`name`, a fixed word, labels its failures). */
  read(name: string, take: () => void | Promise<void>): void {
    this.readings.push({ name, take });
  }

  /** The exposition text, after the readings (unless taken within the interval, or under way). */
  async text(): Promise<string> {
    if (!this.reading && performance.now() - this.readAt >= this.minReadingIntervalMs) {
      this.reading = this.readAll().finally(() => {
        this.reading = null;
        this.readAt = performance.now();
      });
    }
    await this.reading;
    return this.registry.metrics();
  }

  /**
   * Takes every reading. One that fails or runs past its deadline (the database is down or slow)
   * leaves its gauges as last read and is counted: the scrape still answers.
   */
  private async readAll(): Promise<void> {
    await Promise.all(
      this.readings.map(async ({ name, take }) => {
        let timer: NodeJS.Timeout | undefined;
        const deadline = new Promise<never>((_, reject) => {
          timer = setTimeout(
            () => reject(new Error(`${name} took over ${READING_DEADLINE_MS} ms`)),
            READING_DEADLINE_MS,
          );
        });
        try {
          await Promise.race([take(), deadline]);
        } catch (error) {
          this.readingFailures.inc({ reading: name });
          this.logger.warn({ err: error, reading: name }, 'a metrics reading failed');
        } finally {
          clearTimeout(timer);
        }
      }),
    );
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}

/** The response class of an attempt: 2xx…5xx, or the error class when no answer came. */
export function responseClass(outcome: { statusCode: number } | { errorClass: string }): string {
  return 'statusCode' in outcome ? `${Math.floor(outcome.statusCode / 100)}xx` : outcome.errorClass;
}
