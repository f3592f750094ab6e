import { LockMode } from '@mikro-orm/core';
import type { Orm } from '../../db/orm.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { EventEntity, type Event } from '../events/event.entity.ts';
import { parseEventTypeName } from '../event-types/event-type.service.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import { systemActor } from '../tenancy/actor.ts';
import type { SecretBox } from '../webhooks/webhook-secret.ts';
import { WebhookEntity, type Webhook } from '../webhooks/webhook.entity.ts';
import { DeliveryAttemptEntity, DeliveryEntity, type Delivery } from './delivery.entity.ts';

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
   * Returns false when the attempt was already recorded (a repeated message raced this one).
   */
  async record(
    job: AttemptJob,
    attempt: number,
    result: AttemptRecord,
    settlement: Settlement,
    now: Date,
  ): Promise<boolean> {
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
        },
      );
      if (updated === 0) return false;
      tx.create(DeliveryAttemptEntity, {
        tenantId: delivery.tenantId,
        deliveryId: delivery.id,
        webhookId: delivery.webhookId,
        attempt,
        ...result,
        createdAt: now,
      });
      if (!webhook) return true;
      const current = await tx.findOne(
        WebhookEntity,
        { id: webhook.id },
        { lockMode: LockMode.PESSIMISTIC_WRITE },
      );
      if (!current) return true;
      const before = { ...current };
      if (settlement.status === 'SUCCEEDED') {
        current.lastSuccessAt = now;
        current.failingSince = null;
      } else {
        current.lastFailureAt = now;
        current.failingSince ??= now;
      }
      const failingFor = current.failingSince ? now.getTime() - current.failingSince.getTime() : 0;
      const disable =
        settlement.status === 'FAILED' && settlement.disableWebhook
          ? settlement.disableWebhook
          : failingFor >= this.autoDisableAfterMs
            ? `failing continuously since ${current.failingSince!.toISOString()}`
            : null;
      if (disable && current.isActive) {
        current.isActive = false;
        current.disabledAt = now;
        current.disabledReason = disable;
        disabled = true;
        record({
          action: 'webhook.disabled',
          relationName: 'Webhook',
          relationId: current.id,
          related: { type: 'Webhook', id: current.id, name: current.name ?? current.url },
          metadata: { changes: changes(before, current, ['isActive', 'disabledAt', 'disabledReason']) },
        });
      }
      return true;
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
        { status: 'RETRYING', nextAttemptAt: until },
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
        { status: 'FAILED', lastError: reason, nextAttemptAt: null },
        { filters: false },
      );
  }

  /**
   * Queues what is due: parked deliveries whose time came, and queued ones untouched for
   * `stuckAfterMs` (their message may have been lost between a commit and a publish). Rows are
   * locked (SKIP LOCKED, so schedulers on several workers share the work) while `enqueue`
   * publishes them; a repeat is dropped by the stream or, later, by the attempt number.
   */
  async requeueDue(
    limit: number,
    stuckAfterMs: number,
    enqueue: (d: Delivery) => Promise<void>,
  ): Promise<number> {
    return this.orm.em.fork().transactional(async (tx) => {
      const now = new Date();
      const due = await tx.find(
        DeliveryEntity,
        {
          $or: [
            { status: 'RETRYING', nextAttemptAt: { $lte: now } },
            { status: 'PENDING', updatedAt: { $lt: new Date(now.getTime() - stuckAfterMs) } },
          ],
        },
        {
          limit,
          orderBy: { nextAttemptAt: 'asc' },
          lockMode: LockMode.PESSIMISTIC_PARTIAL_WRITE,
          filters: false,
        },
      );
      for (const delivery of due) {
        delivery.updatedAt = now;
        await enqueue(delivery);
      }
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
