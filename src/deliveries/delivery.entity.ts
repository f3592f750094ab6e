import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';

export const deliveryStatuses = ['PENDING', 'SUCCEEDED', 'FAILED', 'RETRYING', 'PAUSED'] as const;
export type DeliveryStatus = (typeof deliveryStatuses)[number];
/** The delivery's status once an attempt was judged. */
export type AttemptStatus = Extract<DeliveryStatus, 'SUCCEEDED' | 'RETRYING' | 'FAILED'>;

/**
 * One event to one webhook (Flowtly's webhook log). Its id is the `webhook-id` header, the same on
 * every attempt. PENDING: queued on the bus; RETRYING: parked until nextAttemptAt, when the
 * scheduler queues it again; PAUSED: held while its tenant is suspended, parked again on resume.
 */
export const DeliveryEntity = defineEntity({
  name: 'Delivery',
  tableName: 'deliveries',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    webhookId: p.uuid(),
    eventId: p.uuid(),
    eventType: p.string().length(255),
    status: p.string().length(16).$type<DeliveryStatus>().default('PENDING'),
    attempts: p.integer().default(0),
    nextAttemptAt: p.datetime().nullable(),
    lastAttemptAt: p.datetime().nullable(),
    lastStatusCode: p.integer().nullable(),
    lastError: p.string().length(1000).nullable(),
    succeededAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ['eventId', 'webhookId'], name: 'deliveries_event_webhook_unique' }],
  // Each index is written on every insert and every settlement, the largest share of PostgreSQL's
  // work on the hot path. So a status filter reads the tenant's index (except FAILED and PAUSED:
  // rare, and looked for), and retention finds old rows by their time-ordered id.
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'deliveries_tenant_created_at_id_index' },
    { properties: ['tenantId', 'webhookId', 'createdAt', 'id'], name: 'deliveries_tenant_webhook_index' },
    {
      name: 'deliveries_failed_index',
      expression:
        'create index "deliveries_failed_index" on "deliveries" ("tenant_id", "created_at", "id") where "status" = \'FAILED\'',
    },
    {
      name: 'deliveries_paused_index',
      expression:
        'create index "deliveries_paused_index" on "deliveries" ("tenant_id", "id") where "status" = \'PAUSED\'',
    },
    {
      name: 'deliveries_due_index',
      expression:
        'create index "deliveries_due_index" on "deliveries" ("next_attempt_at") where "next_attempt_at" is not null',
    },
  ],
});
export type Delivery = InferEntity<typeof DeliveryEntity>;

/** One HTTP try of a delivery. A receiver's 4xx/5xx is an outcome recorded here, not an exception. */
export const DeliveryAttemptEntity = defineEntity({
  name: 'DeliveryAttempt',
  tableName: 'delivery_attempts',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    deliveryId: p.uuid(),
    webhookId: p.uuid(),
    attempt: p.integer(),
    /** The delivery's status once this attempt was judged: SUCCEEDED, RETRYING or FAILED. */
    status: p.string().length(16).$type<AttemptStatus>(),
    url: p.string().length(2048),
    statusCode: p.integer().nullable(),
    responseTimeMs: p.integer(),
    /** The first 4 KiB of the response body. */
    response: p.text().nullable(),
    /** timeout, connect, dns, ssrf, tls, network; null when the receiver answered. */
    errorClass: p.string().length(16).nullable(),
    error: p.string().length(1000).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  indexes: [
    // Retention finds old attempts by their time-ordered id: no index on created_at to write.
    { properties: ['deliveryId', 'attempt'], name: 'delivery_attempts_delivery_index' },
  ],
});
export type DeliveryAttempt = InferEntity<typeof DeliveryAttemptEntity>;

/** Attempts recorded but not yet announced to live consoles, written in the attempt's transaction. */
export const AttemptOutboxEntity = defineEntity({
  name: 'AttemptOutbox',
  tableName: 'attempt_outbox',
  properties: {
    attemptId: p.uuid().primary(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  indexes: [{ properties: ['createdAt'] }],
});
