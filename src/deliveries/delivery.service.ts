import { sql } from 'kysely';
import { z } from 'zod';
import type { EntityManager, Orm } from '../db/orm.ts';
import { findByIds } from '../db/by-ids.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { ConflictError, InvalidInputError, NotFoundError } from '../errors.ts';
import type { EventTypeService } from '../event-types/event-type.service.ts';
import { parseEventTypeName } from '../event-types/event-type.service.ts';
import { EventEntity } from '../events/event.entity.ts';
import { createdWithin, findPage, type Page, type PageRequest } from '../pagination.ts';
import type { Actor } from '../tenancy/actor.ts';
import { WebhookEntity, type Webhook } from '../webhooks/webhook.entity.ts';
import {
  DeliveryAttemptEntity,
  DeliveryEntity,
  type Delivery,
  type DeliveryAttempt,
  type DeliveryStatus,
} from './delivery.entity.ts';

export interface DeliveryFilter {
  webhookId?: string | null;
  statuses?: readonly DeliveryStatus[] | null;
  eventType?: string | null;
  from?: Date | null;
  to?: Date | null;
}

/** How many deliveries one replay may queue. */
export const MAX_REPLAY = 10_000;

const isId = (id: string) => z.uuid().safeParse(id).success;

/** The delivery log of a tenant, and what its users can do with it. */
export class DeliveryService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly eventTypes: EventTypeService;

  constructor(deps: { orm: Orm; audit: AuditService; eventTypes: EventTypeService }) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.eventTypes = deps.eventTypes;
  }

  /** Deliveries of the actor's tenant, newest first. */
  async list(actor: Actor, filter: DeliveryFilter, page: PageRequest): Promise<Page<Delivery>> {
    if (filter.webhookId && !isId(filter.webhookId)) return { items: [], hasNextPage: false };
    const { webhookId, statuses, eventType } = filter;
    const installation = actor.appInstallationId;
    return findPage(tenantEm(this.orm, actor), DeliveryEntity, page, (query) =>
      query
        // An app's token reads the deliveries of its own webhooks only.
        .$if(!!installation, (q) =>
          q.where(
            sql<boolean>`webhook_id in (select id from webhooks where app_installation_id = ${installation}::uuid)`,
          ),
        )
        .$if(!!webhookId, (q) => q.where('webhook_id', '=', webhookId!))
        .$if(!!statuses?.length, (q) => q.where('status', 'in', [...statuses!]))
        .$if(!!eventType, (q) => q.where('event_type', '=', eventType!))
        .$call(createdWithin(filter)),
    );
  }

  async getMany(actor: Actor, ids: readonly string[]): Promise<(Delivery | null)[]> {
    const em = tenantEm(this.orm, actor);
    const deliveries = await findByIds(em, DeliveryEntity, ids);
    if (!actor.appInstallationId) return deliveries;
    const own = await this.appWebhookIds(em, actor.appInstallationId);
    return deliveries.map((delivery) => (delivery && own.has(delivery.webhookId) ? delivery : null));
  }

  /** Every attempt of a delivery, first to last. */
  async attempts(actor: Actor, deliveryId: string): Promise<DeliveryAttempt[]> {
    if (actor.appInstallationId && !(await this.getMany(actor, [deliveryId]))[0]) return [];
    return tenantEm(this.orm, actor).find(
      DeliveryAttemptEntity,
      { deliveryId },
      { orderBy: { attempt: 'asc' } },
    );
  }

  /** The webhooks an app's installation made. */
  private async appWebhookIds(em: EntityManager, installationId: string): Promise<Set<string>> {
    const rows = await em.find(WebhookEntity, { appInstallationId: installationId }, { fields: ['id'] });
    return new Set(rows.map((row) => row.id));
  }

  /**
   * Sends a delivery again now as its next attempt: a settled one, or a waiting retry brought
   * forward. One already queued is a ConflictError (it is about to be sent).
   */
  async redeliver(actor: Actor, id: string): Promise<Delivery> {
    return this.audit.transact(actor, async (tx, record) => {
      const delivery = isId(id) ? await tx.findOne(DeliveryEntity, { id }) : null;
      if (!delivery) throw new NotFoundError('Delivery', id);
      if (delivery.status === 'PENDING') throw new ConflictError('the delivery is queued already');
      await this.activeWebhook(tx, delivery.webhookId);
      // Due now: the scheduler queues it within a moment, and cannot lose it on the way.
      delivery.status = 'RETRYING';
      delivery.nextAttemptAt = new Date();
      record({
        action: 'delivery.redelivered',
        relationName: 'Delivery',
        relationId: delivery.id,
        metadata: { webhookId: delivery.webhookId, eventId: delivery.eventId, attempts: delivery.attempts },
      });
      return delivery;
    });
  }

  /**
   * Queues again the webhook's deliveries created in [since, until): the failed ones, or every
   * settled one. Returns how many were queued.
   */
  async replay(
    actor: Actor,
    input: { webhookId: string; since: Date; until?: Date | null; onlyFailed?: boolean | null },
  ) {
    const until = input.until ?? new Date();
    if (until <= input.since) {
      throw new InvalidInputError([{ path: ['input', 'until'], message: 'must be after since' }]);
    }
    const statuses: DeliveryStatus[] = input.onlyFailed ? ['FAILED'] : ['FAILED', 'SUCCEEDED'];
    return this.audit.transact(actor, async (tx, record) => {
      await this.activeWebhook(tx, input.webhookId);
      const rows = await tx.find(
        DeliveryEntity,
        {
          webhookId: input.webhookId,
          status: { $in: statuses },
          createdAt: { $gte: input.since, $lt: until },
        },
        { limit: MAX_REPLAY + 1, orderBy: { createdAt: 'asc' } },
      );
      if (rows.length > MAX_REPLAY) {
        throw new InvalidInputError([
          {
            path: ['input', 'since'],
            message: `the range holds more than ${MAX_REPLAY} deliveries: narrow it`,
          },
        ]);
      }
      const now = new Date();
      await tx.nativeUpdate(
        DeliveryEntity,
        { id: { $in: rows.map((row) => row.id) } },
        { status: 'RETRYING', nextAttemptAt: now },
      );
      record({
        action: 'deliveries.replayed',
        relationName: 'Webhook',
        relationId: input.webhookId,
        metadata: {
          since: input.since.toISOString(),
          until: until.toISOString(),
          onlyFailed: Boolean(input.onlyFailed),
          queued: rows.length,
        },
      });
      return rows.length;
    });
  }

  /**
   * Sends a test event to one webhook only (it does not go on the event stream, so no other webhook
   * sees it). The type defaults to the webhook's first subscribed type.
   */
  async sendTest(actor: Actor, input: { webhookId: string; type?: string | null }): Promise<Delivery> {
    const em = tenantEm(this.orm, actor);
    const webhook = await this.activeWebhook(em, input.webhookId);
    if (actor.appInstallationId && webhook.appInstallationId !== actor.appInstallationId) {
      throw new NotFoundError('Webhook', input.webhookId);
    }
    const type = input.type ?? webhook.subscribedEvents.find((pattern) => !pattern.includes('*'));
    if (!type) {
      throw new InvalidInputError([
        { path: ['input', 'type'], message: 'the webhook subscribes only to patterns: name a type' },
      ]);
    }
    await this.eventTypes.require(type, ['input', 'type'], null);
    return this.audit.transact(actor, async (tx, record) => {
      const event = tx.create(EventEntity, {
        tenantId: actor.tenantId,
        type,
        ...parseEventTypeName(type),
        current: { test: true, sentBy: actor.name },
        previous: null,
        occurredAt: new Date(),
        idempotencyKey: `test:${crypto.randomUUID()}`,
        // Not for the stream (no outbox entry): dispatched already.
        dispatchedAt: new Date(),
        deliveryCount: 1,
      });
      await tx.flush();
      const delivery = tx.create(DeliveryEntity, {
        tenantId: actor.tenantId,
        webhookId: webhook.id,
        eventId: event.id,
        eventType: type,
        status: 'RETRYING',
        nextAttemptAt: new Date(),
      });
      record({
        action: 'webhook.test_sent',
        relationName: 'Webhook',
        relationId: webhook.id,
        metadata: { type, deliveryId: delivery.id },
      });
      return delivery;
    });
  }

  /** Within a transaction, pass its EntityManager: embedded PostgreSQL has a single connection. */
  private async activeWebhook(em: EntityManager, webhookId: string): Promise<Webhook> {
    const webhook = isId(webhookId) ? await em.findOne(WebhookEntity, { id: webhookId }) : null;
    if (!webhook) throw new NotFoundError('Webhook', webhookId);
    if (!webhook.isActive) throw new ConflictError('the webhook is disabled: enable it first');
    return webhook;
  }
}
