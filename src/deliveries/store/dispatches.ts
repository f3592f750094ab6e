import { batchLoader } from '../../db/batch-loader.ts';
import { newId } from '../../db/ids.ts';
import type { Orm } from '../../db/orm.ts';
import { sqlRows } from '../../db/raw.ts';
import { parseEventTypeName } from '../../event-types/event-type.service.ts';
import type { PublishedEvent } from '../../events/published-event.ts';
import type { QueuedDelivery } from '../queue.ts';
import { PIPELINE_BATCH } from './batching.ts';

interface Dispatch {
  event: PublishedEvent;
  webhookIds: readonly string[];
}

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

/** Turns events into deliveries, the calls of a moment in one statement (across tenants: rows carry theirs). */
export class EventDispatches {
  private readonly orm: Orm;
  private readonly timeout: { timeoutMs: number };
  private readonly dispatches = batchLoader<Dispatch, QueuedDelivery[]>(
    (batch) => this.dispatchBatch(batch),
    PIPELINE_BATCH,
  );

  constructor(deps: { orm: Orm }, options: { statementTimeoutMs: number }) {
    this.orm = deps.orm;
    this.timeout = { timeoutMs: options.statementTimeoutMs };
  }

  /**
   * Records the event (hosts may publish straight onto NATS), creates one delivery per webhook
   * (idempotent: a redelivered event creates nothing twice) and returns the event's deliveries not
   * yet attempted, to be queued — again, if this is a redelivery.
   */
  create(event: PublishedEvent, webhookIds: readonly string[]): Promise<QueuedDelivery[]> {
    return this.dispatches.load({ event, webhookIds });
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
}
