import { LockMode } from '@mikro-orm/core';
import { batchLoader } from '../../db/batch-loader.ts';
import type { Orm } from '../../db/orm.ts';
import { sqlRows } from '../../db/raw.ts';
import { EventEntity } from '../../events/event.entity.ts';
import { DeliveryEntity, type Delivery } from '../delivery.entity.ts';
import { PIPELINE_BATCH } from './batching.ts';

interface ParkOrder {
  id: string;
  attempts: number;
  until: Date;
}

/**
 * Deliveries that wait in the database, holding no message: parked until a time (a retry, or an
 * endpoint that could not take them), ended without an attempt, and queued again when due.
 */
export class Parking {
  private readonly orm: Orm;
  private readonly timeout: { timeoutMs: number };
  private readonly parkings = batchLoader<ParkOrder, null>(
    (parkings) => this.parkBatch(parkings),
    PIPELINE_BATCH,
  );
  private readonly pauses = batchLoader<Omit<ParkOrder, 'until'>, null>(
    (pauses) => this.pauseBatch(pauses),
    PIPELINE_BATCH,
  );

  constructor(deps: { orm: Orm }, options: { statementTimeoutMs: number }) {
    this.orm = deps.orm;
    this.timeout = { timeoutMs: options.statementTimeoutMs };
  }

  /**
   * Parks a delivery without an attempt (its endpoint's circuit is open, or its line is full)
   * until `until`. Batched: a hanging endpoint parks a share of all traffic.
   */
  async park(delivery: Pick<Delivery, 'id' | 'attempts'>, until: Date): Promise<void> {
    await this.parkings.load({ id: delivery.id, attempts: delivery.attempts, until });
  }

  private async parkBatch(parkings: readonly ParkOrder[]): Promise<null[]> {
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

  /**
   * Holds a delivery of a suspended tenant, without an attempt, until the tenant is resumed
   * (resumePaused). Batched like park: a suspended tenant's burst pauses a share of all traffic.
   * A delivery paused just after its tenant was resumed is resumed on the next pass.
   */
  async pause(delivery: Pick<Delivery, 'id' | 'attempts'>): Promise<void> {
    await this.pauses.load({ id: delivery.id, attempts: delivery.attempts });
  }

  private async pauseBatch(pauses: readonly Omit<ParkOrder, 'until'>[]): Promise<null[]> {
    await sqlRows(
      this.orm,
      `update deliveries d set status = 'PAUSED', next_attempt_at = null, updated_at = $1::timestamptz
       from jsonb_to_recordset($2::jsonb) as x(id uuid, attempts int)
       where d.id = x.id and d.attempts = x.attempts`,
      [new Date(), JSON.stringify(pauses)],
      this.timeout,
    );
    return pauses.map(() => null);
  }

  /**
   * Marks due up to `limit` paused deliveries of tenants no longer suspended, oldest first, for
   * requeueDue to queue. The tenants holding paused deliveries are found by skipping through the
   * index of paused deliveries (one probe per such tenant), so a pass costs next to nothing when
   * none is paused, and a suspended tenant's backlog, however large, is not read.
   */
  async resumePaused(limit: number): Promise<number> {
    const now = new Date();
    const resumed = await sqlRows<{ id: string }>(
      this.orm,
      `with recursive paused(tenant_id) as (
         (select tenant_id from deliveries where status = 'PAUSED' order by tenant_id limit 1)
         union all
         select (select d.tenant_id from deliveries d
                 where d.status = 'PAUSED' and d.tenant_id > p.tenant_id order by d.tenant_id limit 1)
         from paused p where p.tenant_id is not null
       )
       update deliveries d set status = 'RETRYING', next_attempt_at = $1::timestamptz, updated_at = $1::timestamptz
       where d.id in (
         select x.id from paused p
         join tenants t on t.id = p.tenant_id and t.suspended_at is null
         cross join lateral (
           select id from deliveries where tenant_id = p.tenant_id and status = 'PAUSED' order by id limit $2
         ) x
         limit $2)
       and d.status = 'PAUSED'
       returning d.id`,
      [now, limit],
      this.timeout,
    );
    return resumed.length;
  }

  /** Ends a delivery whose webhook is gone or disabled. */
  async abandon(delivery: Pick<Delivery, 'id' | 'attempts'>, reason: string): Promise<boolean> {
    const updated = await this.orm.em
      .fork()
      .nativeUpdate(
        DeliveryEntity,
        { id: delivery.id, attempts: delivery.attempts },
        { status: 'FAILED', lastError: reason, nextAttemptAt: null, updatedAt: new Date() },
        { filters: false },
      );
    return updated > 0;
  }

  /**
   * Deliveries waiting in the database: the metrics' herald_deliveries_parked. Each count reads a
   * partial index only (a delivery has a next attempt time exactly while it is RETRYING).
   */
  async counts(): Promise<{ retrying: number; paused: number }> {
    const [row] = await sqlRows<{ retrying: string; paused: string }>(
      this.orm,
      `select (select count(*) from deliveries where next_attempt_at is not null) as retrying,
              (select count(*) from deliveries where status = 'PAUSED') as paused`,
      [],
      { timeoutMs: 5_000 },
    );
    return { retrying: Number(row!.retrying), paused: Number(row!.paused) };
  }

  /**
   * Queues parked deliveries whose time came. The rows stay locked (SKIP LOCKED: schedulers on
   * several workers share the work) while `enqueue` publishes them, and become PENDING in the same
   * transaction: a failed publish rolls back and the next pass tries again, so no delivery is left
   * pending without a message.
   */
  async requeueDue(
    limit: number,
    enqueue: (d: Delivery, traceparent: string | null) => Promise<void>,
  ): Promise<number> {
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
      // Each goes out in its event's trace, when the event was traced: a retry is part of it.
      const events =
        due.length === 0
          ? []
          : await tx.find(
              EventEntity,
              { id: { $in: [...new Set(due.map((d) => d.eventId))] } },
              { fields: ['id', 'traceparent'], filters: false },
            );
      const traceparents = new Map(events.map((event) => [event.id, event.traceparent ?? null]));
      await Promise.all(
        due.map((delivery) => {
          delivery.updatedAt = now;
          return enqueue(delivery, traceparents.get(delivery.eventId) ?? null);
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
