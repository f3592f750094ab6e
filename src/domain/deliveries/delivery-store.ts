import { LockMode } from '@mikro-orm/core';
import type { Orm } from '../../db/orm.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { EventEntity, type Event } from '../events/event.entity.ts';
import { parseEventTypeName } from '../event-types/event-type.service.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import { systemActor } from '../tenancy/actor.ts';
import type { SecretBox } from '../webhooks/webhook-secret.ts';
import { WebhookEntity, type Webhook } from '../webhooks/webhook.entity.ts';
import {
  DeliveryAttemptEntity,
  DeliveryEntity,
  type Delivery,
  type DeliveryAttempt,
} from './delivery.entity.ts';

/** What a worker needs for one attempt. */
export interface AttemptJob {
  delivery: Delivery;
  webhook: Webhook | null;
  event: Event | null;
  /** The live signing secrets: the current one, and the previous one during its grace period. */
  secrets: string[];
}

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

/**
 * The delivery pipeline's persistence. Workers serve every tenant, so these methods read across
 * tenants on purpose (filters off) and take the tenant from the rows.
 */
export class DeliveryStore {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly box: SecretBox;
  private readonly autoDisableAfterMs: number;
  private readonly onWebhookDisabled: (tenantId: string) => void;

  constructor(
    deps: { orm: Orm; audit: AuditService; box: SecretBox },
    options: { autoDisableAfterMs: number; onWebhookDisabled: (tenantId: string) => void },
  ) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.box = deps.box;
    this.autoDisableAfterMs = options.autoDisableAfterMs;
    this.onWebhookDisabled = options.onWebhookDisabled;
  }

  /**
   * Records the event (hosts may publish straight onto NATS), creates one delivery per webhook
   * (idempotent: a redelivered event creates nothing twice) and returns the event's deliveries not
   * yet attempted, to be queued — again, if this is a redelivery.
   */
  async createForEvent(event: PublishedEvent, webhookIds: readonly string[]): Promise<Delivery[]> {
    return this.orm.em.fork().transactional(async (tx) => {
      await tx.upsert(
        EventEntity,
        {
          id: event.id,
          tenantId: event.tenantId,
          type: event.type,
          ...parseEventTypeName(event.type),
          current: event.current ?? null,
          previous: event.previous ?? null,
          occurredAt: event.occurredAt,
          idempotencyKey: event.idempotencyKey,
          publishedAt: new Date(),
          createdAt: new Date(),
        },
        { onConflictFields: ['tenantId', 'idempotencyKey'], onConflictAction: 'ignore', filters: false },
      );
      const row = await tx.findOneOrFail(
        EventEntity,
        { tenantId: event.tenantId, idempotencyKey: event.idempotencyKey },
        { filters: false },
      );
      if (webhookIds.length > 0) {
        await tx.upsertMany(
          DeliveryEntity,
          webhookIds.map((webhookId) => ({
            tenantId: event.tenantId,
            webhookId,
            eventId: row.id,
            eventType: event.type,
            status: 'PENDING' as const,
            attempts: 0,
          })),
          { onConflictFields: ['eventId', 'webhookId'], onConflictAction: 'ignore', filters: false },
        );
      }
      if (!row.dispatchedAt) {
        await tx.nativeUpdate(
          EventEntity,
          { id: row.id },
          { dispatchedAt: new Date(), deliveryCount: webhookIds.length },
          { filters: false },
        );
      }
      return tx.find(DeliveryEntity, { eventId: row.id, status: 'PENDING', attempts: 0 }, { filters: false });
    });
  }

  async loadForAttempt(deliveryId: string): Promise<AttemptJob | null> {
    const em = this.orm.em.fork();
    const delivery = await em.findOne(DeliveryEntity, { id: deliveryId }, { filters: false });
    if (!delivery) return null;
    const [webhook, event] = await Promise.all([
      em.findOne(
        WebhookEntity,
        { id: delivery.webhookId },
        { filters: false, populate: ['secret', 'previousSecret'] },
      ),
      em.findOne(EventEntity, { id: delivery.eventId }, { filters: false }),
    ]);
    const secrets: string[] = [];
    if (webhook) {
      secrets.push(this.box.open(webhook.secret));
      if (
        webhook.previousSecret &&
        webhook.previousSecretExpiresAt &&
        webhook.previousSecretExpiresAt > new Date()
      ) {
        secrets.push(this.box.open(webhook.previousSecret));
      }
    }
    return { delivery, webhook, event, secrets };
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
          lastError: settlement.status === 'SUCCEEDED' ? null : settlement.reason.slice(0, 1000),
          nextAttemptAt: settlement.status === 'RETRYING' ? settlement.nextAttemptAt : null,
          succeededAt: settlement.status === 'SUCCEEDED' ? now : null,
          updatedAt: now,
        },
      );
      if (updated === 0) return null;
      const row = tx.create(DeliveryAttemptEntity, {
        tenantId: delivery.tenantId,
        deliveryId: delivery.id,
        webhookId: delivery.webhookId,
        attempt,
        status: settlement.status,
        ...result,
        createdAt: now,
      });
      if (!webhook) return row;
      // Plain conditional updates, no row lock held across the attempt's writes: lastSuccessAt /
      // lastFailureAt are a status, written when the state changes or at most once a second.
      const aSecondAgo = new Date(now.getTime() - 1_000);
      if (settlement.status === 'SUCCEEDED') {
        await tx.execute(
          'update webhooks set last_success_at = ?, failing_since = null where id = ? and (failing_since is not null or last_success_at is null or last_success_at < ?)',
          [now, webhook.id, aSecondAgo],
        );
        return row;
      }
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

  /** Parks a delivery without an attempt (its endpoint's circuit is open) until `until`. */
  async park(delivery: Delivery, until: Date): Promise<void> {
    await this.orm.em
      .fork()
      .nativeUpdate(
        DeliveryEntity,
        { id: delivery.id, attempts: delivery.attempts },
        { status: 'RETRYING', nextAttemptAt: until, updatedAt: new Date() },
        { filters: false },
      );
  }

  /** Ends a delivery whose webhook is gone or disabled. */
  async abandon(delivery: Delivery, reason: string): Promise<void> {
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
