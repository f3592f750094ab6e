import { LockMode } from '@mikro-orm/core';
import { batchLoader } from '../../db/batch-loader.ts';
import type { Orm } from '../../db/orm.ts';
import { sqlRows } from '../../db/raw.ts';
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
   * (resumePaused). A delivery paused just after its tenant was resumed is resumed on the next pass.
   */
  async pause(delivery: Pick<Delivery, 'id' | 'attempts'>): Promise<void> {
    await this.orm.em
      .fork()
      .nativeUpdate(
        DeliveryEntity,
        { id: delivery.id, attempts: delivery.attempts },
        { status: 'PAUSED', nextAttemptAt: null, updatedAt: new Date() },
        { filters: false },
      );
  }

  /**
   * Marks due up to `limit` paused deliveries of tenants no longer suspended, for requeueDue to
   * queue. Driven by the tenants, each probing the index of paused deliveries: a suspended tenant's
   * backlog, however large, costs a pass nothing.
   */
  async resumePaused(limit: number): Promise<number> {
    const now = new Date();
    const resumed = await sqlRows<{ id: string }>(
      this.orm,
      `update deliveries d set status = 'RETRYING', next_attempt_at = $1::timestamptz, updated_at = $1::timestamptz
       where d.id in (
         select p.id from tenants t
         cross join lateral (select id from deliveries where tenant_id = t.id and status = 'PAUSED' limit $2) p
         where t.suspended_at is null
         limit $2)
       and d.status = 'PAUSED'
       returning d.id`,
      [now, limit],
      this.timeout,
    );
    return resumed.length;
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
