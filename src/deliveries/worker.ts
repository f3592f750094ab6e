import { ZodError } from 'zod';
import type { BusMessage, Consumption, EventBus } from '../bus/bus.ts';
import {
  attemptMessageV1,
  decode,
  deliveryMessageV1,
  encode,
  streams,
  subjects,
  type DeliveryMessage,
} from '../bus/contracts.ts';
import type { DeliveryAttempt } from './delivery.entity.ts';
import type { AttemptJob, DeliveryStore } from './delivery-store.ts';
import type { Logger } from '../logger.ts';
import { decide } from './decide.ts';
import type { AttemptOutcome, DeliveryHttpClient } from './http-client.ts';
import type { EndpointGate } from './isolation.ts';
import type { RetryPolicy } from './retry-schedule.ts';
import { signatureHeaders } from './signing.ts';

/**
 * Makes delivery attempts, as a chain of small steps: prepare (load, check), send (sign, POST),
 * record (attempt, status, webhook). `decide` alone says what an outcome means. Waiting retries
 * are parked in the database, not held here: every message is acked once its outcome is stored.
 */
export class DeliveryWorker {
  private readonly bus: EventBus;
  private readonly store: DeliveryStore;
  private readonly client: DeliveryHttpClient;
  private readonly gate: EndpointGate;
  private readonly policy: RetryPolicy;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly subjects: ReturnType<typeof subjects>;

  constructor(
    deps: {
      bus: EventBus;
      store: DeliveryStore;
      client: DeliveryHttpClient;
      gate: EndpointGate;
      policy: RetryPolicy;
      logger: Logger;
    },
    options: { prefix: string },
  ) {
    this.bus = deps.bus;
    this.store = deps.store;
    this.client = deps.client;
    this.gate = deps.gate;
    this.policy = deps.policy;
    this.logger = deps.logger;
    this.prefix = options.prefix;
    this.subjects = subjects(options.prefix);
  }

  start(concurrency: number, ackWaitMs: number): Consumption {
    return this.bus.consume(
      {
        stream: streams(this.prefix).deliveries.name,
        durable: 'deliverer',
        ackWaitMs,
        maxDeliver: 10_000,
        maxAckPending: concurrency * 4,
      },
      (message) => this.handle(message),
      { concurrency },
    );
  }

  private async handle(message: BusMessage): Promise<void> {
    let job: DeliveryMessage;
    try {
      job = decode(deliveryMessageV1, message.data);
    } catch (error) {
      if (!(error instanceof ZodError || error instanceof SyntaxError)) throw error;
      this.logger.error(
        { err: error, subject: message.subject },
        'dropped a delivery message that breaks its contract',
      );
      return message.term();
    }
    const prepared = await this.prepare(job);
    if (!prepared) return;

    const endpoint = prepared.webhook!.id;
    const openUntil = this.gate.openUntil(endpoint);
    // Parked deliveries wait in the database and hold neither a slot nor an unacked message. The
    // spread keeps an endpoint's parked deliveries from all coming back at the same moment.
    if (openUntil)
      return this.store.park(prepared.delivery, new Date(openUntil + Math.random() * this.gate.openMs));
    let granted = this.gate.tryAcquire(endpoint);
    if (!granted) {
      // Waiting in line may outlast the ack wait: the message is kept from coming back meanwhile.
      const heartbeat = setInterval(() => message.working(), 5_000);
      granted = await this.gate.acquire(endpoint).finally(() => clearInterval(heartbeat));
    }
    if (!granted) {
      const until = this.gate.openUntil(endpoint) ?? Date.now() + 200;
      return this.store.park(prepared.delivery, new Date(until + Math.random() * 800));
    }

    const at = new Date();
    let outcome: AttemptOutcome | undefined;
    try {
      outcome = await this.send(prepared, at);
    } finally {
      this.gate.release(
        endpoint,
        outcome?.kind === 'response' && outcome.statusCode >= 200 && outcome.statusCode < 300,
        outcome?.durationMs ?? Infinity,
      );
    }
    await this.record(prepared, job.attempt, outcome, at);
  }

  /** The job, or null when this message has nothing left to do (a repeat, or the work is gone). */
  private async prepare(job: DeliveryMessage): Promise<AttemptJob | null> {
    const prepared = await this.store.loadForAttempt(job.deliveryId);
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
      await this.store.abandon(delivery, webhook ? 'the event is gone' : 'the webhook was deleted');
      return null;
    }
    if (!webhook.isActive) {
      await this.store.abandon(
        delivery,
        `the webhook is disabled: ${webhook.disabledReason ?? 'no reason given'}`,
      );
      return null;
    }
    return prepared;
  }

  private async send({ delivery, webhook, event, secrets }: AttemptJob, at: Date): Promise<AttemptOutcome> {
    const body = JSON.stringify({
      id: event!.id,
      type: event!.type,
      timestamp: event!.occurredAt.toISOString(),
      tenantId: event!.tenantId,
      meta: { module: event!.module ?? null, model: event!.model, action: event!.action },
      current: event!.current ?? null,
      previous: event!.previous ?? null,
    });
    return this.client.post(webhook!.url, { ...signatureHeaders(secrets, delivery.id, at, body) }, body);
  }

  private async record(job: AttemptJob, attempt: number, outcome: AttemptOutcome, at: Date): Promise<void> {
    const decision = decide(outcome, attempt, this.policy, new Date());
    const stored = await this.store.record(
      job,
      attempt,
      {
        url: job.webhook!.url,
        statusCode: outcome.kind === 'response' ? outcome.statusCode : null,
        responseTimeMs: outcome.durationMs,
        response: outcome.kind === 'response' ? outcome.body : null,
        errorClass: outcome.kind === 'error' ? outcome.errorClass : null,
        error: outcome.kind === 'error' ? outcome.message.slice(0, 1000) : null,
      },
      decision,
      at,
    );
    if (!stored) {
      this.logger.debug({ deliveryId: job.delivery.id, attempt }, 'attempt already recorded by a repeat');
      return;
    }
    this.announce(stored);
  }

  /**
   * Puts a recorded attempt on the bus for live consoles, without waiting for the stream's ack. The
   * attempt log in the database is the record; a console that misses this (the bus is down) reads
   * the log. Only the call that stored the attempt gets here, so it is announced once.
   */
  private announce(attempt: DeliveryAttempt): void {
    const sent = this.bus.notify(
      this.subjects.attempt(attempt.tenantId, attempt.webhookId),
      encode(attemptMessageV1, {
        v: 1,
        ...attempt,
        statusCode: attempt.statusCode ?? null,
        response: attempt.response ?? null,
        errorClass: attempt.errorClass ?? null,
        error: attempt.error ?? null,
        createdAt: attempt.createdAt.toISOString(),
      }),
    );
    if (!sent) this.logger.warn({ deliveryId: attempt.deliveryId }, 'attempt recorded, not announced live');
  }
}
