import { LockMode } from '@mikro-orm/core';
import { LRUCache } from 'lru-cache';
import { batchLoader } from '../db/batch-loader.ts';
import { newId } from '../db/ids.ts';
import { sqlRows } from '../db/raw.ts';
import type { Orm } from '../db/orm.ts';
import type { AuditService } from '../audit/audit.service.ts';
import type { Event } from '../events/event.entity.ts';
import { parseEventTypeName } from '../event-types/event-type.service.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import { systemActor } from '../tenancy/actor.ts';
import type { SecretBox } from '../webhooks/webhook-secret.ts';
import type { Webhook } from '../webhooks/webhook.entity.ts';
import {
  DeliveryAttemptEntity,
  DeliveryEntity,
  type Delivery,
  type DeliveryAttempt,
} from './delivery.entity.ts';

/** What a worker needs for one attempt. */
export interface AttemptJob {
  delivery: Pick<Delivery, 'id' | 'tenantId' | 'webhookId' | 'eventId' | 'status' | 'attempts' | 'updatedAt'>;
  webhook: Pick<Webhook, 'id' | 'url' | 'isActive' | 'disabledReason'> | null;
  event: Pick<
    Event,
    'id' | 'tenantId' | 'type' | 'module' | 'model' | 'action' | 'current' | 'previous' | 'occurredAt'
  > | null;
  /** The live signing secrets: the current one, and the previous one during its grace period. */
  secrets: string[];
}

/** A delivery as the queue needs it. */
export type QueuedDelivery = Pick<Delivery, 'id' | 'tenantId' | 'webhookId' | 'attempts' | 'updatedAt'>;

/** An attempt's result as stored. */
export interface AttemptRecord {
  url: string;
  statusCode: number | null;
  responseTimeMs: number;
  response: string | null;
  errorClass: string | null;
  error: string | null;
}

export type Settlement =
  | { status: 'SUCCEEDED' }
  | { status: 'RETRYING'; nextAttemptAt: Date; reason: string }
  | { status: 'FAILED'; reason: string; disableWebhook: string | null };

interface JobRow {
  id: string;
  tenant_id: string;
  webhook_id: string;
  event_id: string;
  status: Delivery['status'];
  attempts: number;
  updated_at: Date | string;
  w_id: string | null;
  url: string | null;
  is_active: boolean | null;
  disabled_reason: string | null;
  secret: string | null;
  previous_secret: string | null;
  previous_secret_expires_at: Date | string | null;
  e_id: string | null;
  type: string | null;
  module: string | null;
  model: string | null;
  action: string | null;
  current: unknown;
  previous: unknown;
  occurred_at: Date | string | null;
}

interface Parking {
  id: string;
  attempts: number;
  until: Date;
}

interface Dispatch {
  event: PublishedEvent;
  webhookIds: readonly string[];
}

/**
 * Rows of the hot path, written and read as JSON: one statement for a whole batch, at most one of
 * a kind every 10 ms. A delivery waits that much longer at most at each step; in exchange, a
 * pipeline keeping up with its load sends a tenth of the statements it would, each ten times the
 * rows (see batchLoader).
 */
const BATCH = { maxBatchSize: 500, concurrency: 1, intervalMs: 10 };

/**
 * A batch's events stored and dispatched in one statement: each event inserted, or, when an event
 * with its idempotency key is stored already (by the API, or an earlier delivery of this message),
 * that one marked dispatched and used: the earlier event wins. Then its deliveries created
 * (idempotent), and the deliveries of an event that existed and are still waiting for their first
 * attempt returned with the new ones. Every row returned carries its event's tenant and
 * idempotency key. Parameters: the events (JSON), the deliveries wanted, named by their event's
 * tenant and key (JSON), and the time.
 *
 * The upsert returns the stored row even when another transaction committed it while this one
 * ran (a plain insert would skip it, and a lookup would not see it). It may touch a row once per
 * statement, hence the events made distinct first; `xmax` is set on a row it updated, not on one
 * it inserted. The other branches see the tables as they were before the statement. Rows are
 * looked up by a batch's keys one index probe per key (a lateral subquery, which `offset 0` keeps
 * from being merged into the join): PostgreSQL plans `= any(<hundreds of ids>)`, or a join with
 * them, as a scan of the whole table while the table is small, and that scan grows with it.
 * Exported, as is LOAD_JOBS_SQL, for the test of their plans.
 */
export const DISPATCH_SQL = `with incoming as (
     select distinct on (tenant_id, idempotency_key) *
     from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, type varchar, module varchar, model varchar, action varchar, current jsonb, previous jsonb, occurred_at timestamptz, idempotency_key varchar, delivery_count int)
   ), stored as (
     insert into events as e (id, tenant_id, type, module, model, action, current, previous, occurred_at, idempotency_key, created_at, dispatched_at, delivery_count)
     select id, tenant_id, type, module, model, action, current, previous, occurred_at, idempotency_key, $3::timestamptz, $3::timestamptz, delivery_count from incoming
     on conflict (tenant_id, idempotency_key) do update
       set dispatched_at = coalesce(e.dispatched_at, excluded.dispatched_at),
           delivery_count = coalesce(e.delivery_count, excluded.delivery_count)
     returning e.id, e.tenant_id, e.idempotency_key, e.xmax <> 0 as existed
   ), created as (
     insert into deliveries (id, tenant_id, webhook_id, event_id, event_type, status, attempts, created_at, updated_at)
     select x.id, x.tenant_id, x.webhook_id, s.id, x.event_type, 'PENDING', 0, $3::timestamptz, $3::timestamptz
     from jsonb_to_recordset($2::jsonb) as x(id uuid, tenant_id uuid, webhook_id uuid, idempotency_key varchar, event_type varchar)
     join stored s on s.tenant_id = x.tenant_id and s.idempotency_key = x.idempotency_key
     on conflict (event_id, webhook_id) do nothing
     returning id, tenant_id, webhook_id, event_id, updated_at
   )
   select c.*, s.idempotency_key from created c join stored s on s.id = c.event_id
   union all
   select d.*, s.idempotency_key from stored s
   cross join lateral (
     select id, tenant_id, webhook_id, event_id, updated_at from deliveries
     where s.existed and event_id = s.id and status = 'PENDING' and attempts = 0 offset 0
   ) d`;

/** Attempt jobs: each delivery with its webhook and event, looked up as in DISPATCH_SQL. Parameter: the deliveries' ids. */
export const LOAD_JOBS_SQL = `select d.id, d.tenant_id, d.webhook_id, d.event_id, d.status, d.attempts, d.updated_at,
     w.id as w_id, w.url, w.is_active, w.disabled_reason, w.secret, w.previous_secret, w.previous_secret_expires_at,
     e.id as e_id, e.type, e.module, e.model, e.action, e.current, e.previous, e.occurred_at
   from unnest($1::uuid[]) as x(id)
   cross join lateral (select * from deliveries where id = x.id offset 0) d
   left join webhooks w on w.id = d.webhook_id
   left join events e on e.id = d.event_id`;

/**
 * The delivery pipeline's persistence. Workers serve every tenant, so these methods read across
 * tenants on purpose (filters off) and take the tenant from the rows.
 *
 * The hot path (dispatching events, loading attempts, recording successes) is batched: the calls
 * made while the previous statement of the same kind runs share the next one (`batchLoader`), so
 * under load the cost per delivery is a row, not a round trip.
 */
export class DeliveryStore {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly box: SecretBox;
  private readonly autoDisableAfterMs: number;
  /** Batched statements are cancelled past this (config database.statementTimeoutMs). */
  private readonly timeout: { timeoutMs: number };
  private readonly onWebhookDisabled: (tenantId: string) => void;
  private readonly opened = new LRUCache<string, string>({ max: 10_000 });
  private readonly dispatches = batchLoader<Dispatch, QueuedDelivery[]>(
    (batch) => this.dispatchBatch(batch),
    BATCH,
  );
  private readonly jobs = batchLoader<string, AttemptJob | null>((ids) => this.loadBatch(ids), BATCH);
  private readonly parkings = batchLoader<Parking, null>((parkings) => this.parkBatch(parkings), BATCH);
  private readonly successes = batchLoader<DeliveryAttempt, DeliveryAttempt | null>(
    (attempts) => this.recordSuccesses(attempts),
    BATCH,
  );

  constructor(
    deps: { orm: Orm; audit: AuditService; box: SecretBox },
    options: {
      autoDisableAfterMs: number;
      statementTimeoutMs: number;
      onWebhookDisabled: (tenantId: string) => void;
    },
  ) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.box = deps.box;
    this.autoDisableAfterMs = options.autoDisableAfterMs;
    this.timeout = { timeoutMs: options.statementTimeoutMs };
    this.onWebhookDisabled = options.onWebhookDisabled;
  }

  /**
   * Records the event (hosts may publish straight onto NATS), creates one delivery per webhook
   * (idempotent: a redelivered event creates nothing twice) and returns the event's deliveries not
   * yet attempted, to be queued — again, if this is a redelivery.
   */
  createForEvent(event: PublishedEvent, webhookIds: readonly string[]): Promise<QueuedDelivery[]> {
    return this.dispatches.load({ event, webhookIds });
  }

  /** The delivery with its webhook (secrets opened) and event; null when the delivery is gone. */
  loadForAttempt(deliveryId: string): Promise<AttemptJob | null> {
    return this.jobs.load(deliveryId);
  }

  /**
   * One statement for the whole batch, so a crash leaves either all of it or none: a redelivery of
   * the same events completes what is missing. An event the dispatcher stores itself is dispatched
   * by this same statement: it is stored marked so, which spares the row an update.
   */
  private async dispatchBatch(batch: readonly Dispatch[]): Promise<QueuedDelivery[][]> {
    const rows = await sqlRows<{
      id: string;
      tenant_id: string;
      webhook_id: string;
      event_id: string;
      updated_at: Date | string;
      idempotency_key: string;
    }>(
      this.orm,
      DISPATCH_SQL,
      [
        JSON.stringify(
          batch.map(({ event, webhookIds }) => ({
            id: event.id,
            tenant_id: event.tenantId,
            type: event.type,
            ...parseEventTypeName(event.type),
            current: event.current ?? null,
            previous: event.previous ?? null,
            occurred_at: event.occurredAt,
            idempotency_key: event.idempotencyKey,
            delivery_count: webhookIds.length,
          })),
        ),
        JSON.stringify(
          batch.flatMap(({ event, webhookIds }) =>
            webhookIds.map((webhookId) => ({
              id: newId(),
              tenant_id: event.tenantId,
              webhook_id: webhookId,
              idempotency_key: event.idempotencyKey,
              event_type: event.type,
            })),
          ),
        ),
        new Date(),
      ],
      this.timeout,
    );
    const keyOf = (tenantId: string, idempotencyKey: string) => `${tenantId}/${idempotencyKey}`;
    const byEvent = Map.groupBy(rows, (row) => keyOf(row.tenant_id, row.idempotency_key));
    return batch.map(({ event }) =>
      (byEvent.get(keyOf(event.tenantId, event.idempotencyKey)) ?? []).map((row) => ({
        id: row.id,
        tenantId: row.tenant_id,
        webhookId: row.webhook_id,
        attempts: 0,
        updatedAt: new Date(row.updated_at),
      })),
    );
  }

  private async loadBatch(ids: readonly string[]): Promise<(AttemptJob | null | Error)[]> {
    const rows = await sqlRows<JobRow>(this.orm, LOAD_JOBS_SQL, [`{${ids.join(',')}}`], this.timeout);
    const byId = new Map(rows.map((row) => [row.id, row]));
    const now = new Date();
    // A row that cannot be turned into a job (a secret sealed under another key) fails its own
    // caller only.
    return ids.map((id) => {
      const row = byId.get(id);
      try {
        return row ? this.toJob(row, now) : null;
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    });
  }

  /** Sealed secrets are opened once: each sealing is unique, so a rotated secret is a new key. */
  private open(sealed: string): string {
    let secret = this.opened.get(sealed);
    if (secret === undefined) {
      secret = this.box.open(sealed);
      this.opened.set(sealed, secret);
    }
    return secret;
  }

  private toJob(row: JobRow, now: Date): AttemptJob {
    const secrets: string[] = [];
    if (row.w_id) {
      secrets.push(this.open(row.secret!));
      const expires = row.previous_secret_expires_at && new Date(row.previous_secret_expires_at);
      if (row.previous_secret && expires && expires > now) secrets.push(this.open(row.previous_secret));
    }
    return {
      delivery: {
        id: row.id,
        tenantId: row.tenant_id,
        webhookId: row.webhook_id,
        eventId: row.event_id,
        status: row.status,
        attempts: row.attempts,
        updatedAt: new Date(row.updated_at),
      },
      webhook: row.w_id
        ? { id: row.w_id, url: row.url!, isActive: row.is_active!, disabledReason: row.disabled_reason }
        : null,
      event: row.e_id
        ? {
            id: row.e_id,
            tenantId: row.tenant_id,
            type: row.type!,
            module: row.module,
            model: row.model!,
            action: row.action!,
            current: row.current,
            previous: row.previous,
            occurredAt: new Date(row.occurred_at!),
          }
        : null,
      secrets,
    };
  }

  /**
   * Stores attempt `attempt` of a delivery and its settlement in one transaction: the attempt row,
   * the delivery's status, the webhook's lastSuccessAt / lastFailureAt, and — after failing
   * continuously for autoDisableAfterMs, or on 410 — the webhook disabled, audited as the system.
   * Returns the attempt as stored, or null when it was already recorded (a repeated message raced
   * this one).
   */
  async record(
    job: AttemptJob,
    attempt: number,
    result: AttemptRecord,
    settlement: Settlement,
    now: Date,
  ): Promise<DeliveryAttempt | null> {
    const { delivery, webhook } = job;
    const attemptRow: DeliveryAttempt = {
      id: newId(),
      tenantId: delivery.tenantId,
      deliveryId: delivery.id,
      webhookId: delivery.webhookId,
      attempt,
      status: settlement.status,
      ...result,
      createdAt: now,
    };
    if (settlement.status === 'SUCCEEDED') return this.successes.load(attemptRow);
    let disabled = false;
    const stored = await this.audit.transact(systemActor(delivery.tenantId), async (tx, record) => {
      const updated = await tx.nativeUpdate(
        DeliveryEntity,
        { id: delivery.id, attempts: attempt - 1 },
        {
          attempts: attempt,
          status: settlement.status,
          lastAttemptAt: now,
          lastStatusCode: result.statusCode,
          lastError: settlement.reason.slice(0, 1000),
          nextAttemptAt: settlement.status === 'RETRYING' ? settlement.nextAttemptAt : null,
          succeededAt: null,
          updatedAt: now,
        },
      );
      if (updated === 0) return null;
      const row = tx.create(DeliveryAttemptEntity, attemptRow);
      if (!webhook) return row;
      // Plain conditional updates, no row lock held across the attempt's writes: lastFailureAt is
      // a status, written when the state changes or at most once a second.
      const aSecondAgo = new Date(now.getTime() - 1_000);
      await tx.execute(
        'update webhooks set last_failure_at = ?, failing_since = coalesce(failing_since, ?) where id = ? and (failing_since is null or last_failure_at is null or last_failure_at < ?)',
        [now, now, webhook.id, aSecondAgo],
      );
      const gone = settlement.status === 'FAILED' ? settlement.disableWebhook : null;
      const [off] = await tx.execute<
        { id: string; name: string | null; url: string; disabled_reason: string }[]
      >(
        gone
          ? 'update webhooks set is_active = false, disabled_at = ?, disabled_reason = ? where id = ? and is_active returning id, name, url, disabled_reason'
          : "update webhooks set is_active = false, disabled_at = ?, disabled_reason = 'failing continuously since ' || failing_since::text where id = ? and is_active and failing_since <= ? returning id, name, url, disabled_reason",
        gone ? [now, gone, webhook.id] : [now, webhook.id, new Date(now.getTime() - this.autoDisableAfterMs)],
      );
      if (off) {
        disabled = true;
        record({
          action: 'webhook.disabled',
          relationName: 'Webhook',
          relationId: off.id,
          related: { type: 'Webhook', id: off.id, name: off.name ?? new URL(off.url).host },
          metadata: {
            changes: {
              isActive: { before: true, after: false },
              disabledAt: { before: null, after: now.toISOString() },
              disabledReason: { before: null, after: off.disabled_reason },
            },
          },
        });
      }
      return row;
    });
    if (disabled) this.onWebhookDisabled(delivery.tenantId);
    return stored;
  }

  /**
   * Successful attempts of a batch in one statement: each delivery settled (only from the attempt
   * before, so a repeat records nothing), its attempt row, and each webhook's lastSuccessAt, written
   * when the state changes or at most once a second. The webhooks are locked in id order, so two
   * workers' batches sharing webhooks wait for each other instead of deadlocking.
   */
  private async recordSuccesses(attempts: readonly DeliveryAttempt[]): Promise<(DeliveryAttempt | null)[]> {
    // Two repeats of one attempt in a batch: the first is recorded, the other is a repeat.
    const first = new Map<string, DeliveryAttempt>();
    for (const a of attempts) if (!first.has(a.deliveryId)) first.set(a.deliveryId, a);
    const inserted = await sqlRows<{ id: string }>(
      this.orm,
      `with x as (
         select * from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, delivery_id uuid, webhook_id uuid, attempt int, url varchar, status_code int, response_time_ms int, response text, created_at timestamptz)
       ), settled as (
         update deliveries d set attempts = x.attempt, status = 'SUCCEEDED', last_attempt_at = x.created_at,
           last_status_code = x.status_code, last_error = null, next_attempt_at = null,
           succeeded_at = x.created_at, updated_at = x.created_at
         from x where d.id = x.delivery_id and d.attempts = x.attempt - 1
         returning d.id
       ), attempts as (
         insert into delivery_attempts (id, tenant_id, delivery_id, webhook_id, attempt, status, url, status_code, response_time_ms, response, error_class, error, created_at)
         select x.id, x.tenant_id, x.delivery_id, x.webhook_id, x.attempt, 'SUCCEEDED', x.url, x.status_code, x.response_time_ms, x.response, null, null, x.created_at
         from x join settled on settled.id = x.delivery_id
         returning id
       ), due as (
         select w.id, s.at from webhooks w
         join (select webhook_id, max(created_at) as at from x group by webhook_id) s on s.webhook_id = w.id
         where w.failing_since is not null or w.last_success_at is null or w.last_success_at < s.at - interval '1 second'
         order by w.id
         for update of w
       ), succeeded as (
         update webhooks w set last_success_at = due.at, failing_since = null from due where w.id = due.id
       )
       select id from attempts`,
      [
        JSON.stringify(
          [...first.values()].map((a) => ({
            id: a.id,
            tenant_id: a.tenantId,
            delivery_id: a.deliveryId,
            webhook_id: a.webhookId,
            attempt: a.attempt,
            url: a.url,
            status_code: a.statusCode,
            response_time_ms: a.responseTimeMs,
            response: a.response,
            created_at: a.createdAt,
          })),
        ),
      ],
      this.timeout,
    );
    const stored = new Set(inserted.map((row) => row.id));
    return attempts.map((a) => (stored.has(a.id) ? a : null));
  }

  /**
   * Parks a delivery without an attempt (its endpoint's circuit is open, or its line is full)
   * until `until`. Batched: a hanging endpoint parks a share of all traffic.
   */
  async park(delivery: Pick<Delivery, 'id' | 'attempts'>, until: Date): Promise<void> {
    await this.parkings.load({ id: delivery.id, attempts: delivery.attempts, until });
  }

  private async parkBatch(parkings: readonly Parking[]): Promise<null[]> {
    await sqlRows(
      this.orm,
      `update deliveries d set status = 'RETRYING', next_attempt_at = x.until, updated_at = $1::timestamptz
       from jsonb_to_recordset($2::jsonb) as x(id uuid, attempts int, until timestamptz)
       where d.id = x.id and d.attempts = x.attempts`,
      [new Date(), JSON.stringify(parkings)],
      this.timeout,
    );
    return parkings.map(() => null);
  }

  /** Ends a delivery whose webhook is gone or disabled. */
  async abandon(delivery: Pick<Delivery, 'id' | 'attempts'>, reason: string): Promise<void> {
    await this.orm.em
      .fork()
      .nativeUpdate(
        DeliveryEntity,
        { id: delivery.id, attempts: delivery.attempts },
        { status: 'FAILED', lastError: reason, nextAttemptAt: null, updatedAt: new Date() },
        { filters: false },
      );
  }

  /**
   * Queues parked deliveries whose time came. The rows stay locked (SKIP LOCKED: schedulers on
   * several workers share the work) while `enqueue` publishes them, and become PENDING in the same
   * transaction: a failed publish rolls back and the next pass tries again, so no delivery is left
   * pending without a message.
   */
  async requeueDue(limit: number, enqueue: (d: Delivery) => Promise<void>): Promise<number> {
    return this.orm.em.fork().transactional(async (tx) => {
      const now = new Date();
      const due = await tx.find(
        DeliveryEntity,
        { status: 'RETRYING', nextAttemptAt: { $lte: now } },
        {
          limit,
          orderBy: { nextAttemptAt: 'asc' },
          lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE,
          filters: false,
        },
      );
      await Promise.all(
        due.map((delivery) => {
          delivery.updatedAt = now;
          return enqueue(delivery);
        }),
      );
      if (due.length > 0) {
        await tx.nativeUpdate(
          DeliveryEntity,
          { id: { $in: due.map((d) => d.id) } },
          { status: 'PENDING', nextAttemptAt: null, updatedAt: now },
          { filters: false },
        );
      }
      return due.length;
    });
  }
}
