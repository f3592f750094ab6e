import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../../db/ids.ts';
import { tenantFilter } from '../../db/tenant-scope.ts';

/**
 * One published domain event. The row is the outbox too: `publishedAt` stays null until JetStream
 * acknowledged it, and the outbox relay republishes what is still null.
 */
export const EventEntity = defineEntity({
  name: 'Event',
  tableName: 'events',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    type: p.string().length(255),
    module: p.string().length(100).nullable(),
    model: p.string().length(100),
    action: p.string().length(100),
    current: p.json<unknown>().nullable(),
    previous: p.json<unknown>().nullable(),
    occurredAt: p.datetime(),
    idempotencyKey: p.string().length(255),
    publishedAt: p.datetime().nullable(),
    /** When the dispatcher matched it to webhooks, and to how many (0 is recorded too). */
    dispatchedAt: p.datetime().nullable(),
    deliveryCount: p.integer().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['tenantId', 'idempotencyKey'], name: 'events_tenant_idempotency_key_unique' }],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'events_tenant_created_at_id_index' },
    { properties: ['tenantId', 'type', 'createdAt', 'id'], name: 'events_tenant_type_index' },
    {
      name: 'events_dispatched_index',
      expression:
        'create index "events_dispatched_index" on "events" ("created_at") where "dispatched_at" is not null',
    },
    {
      name: 'events_unpublished_index',
      expression:
        'create index "events_unpublished_index" on "events" ("created_at") where "published_at" is null',
    },
  ],
});
export type Event = InferEntity<typeof EventEntity>;
