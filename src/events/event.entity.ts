import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';

/** One published domain event. */
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
    /** When the dispatcher matched it to webhooks, and to how many (0 is recorded too). */
    dispatchedAt: p.datetime().nullable(),
    deliveryCount: p.integer().nullable(),
    /**
     * The W3C traceparent of the request that published it, when traced: the outbox relay, maybe
     * in another process, continues that trace.
     */
    traceparent: p.string().length(55).nullable(),
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
  ],
});
export type Event = InferEntity<typeof EventEntity>;

/**
 * An event publishEvent stored and JetStream has not acknowledged yet: written in the statement
 * that stores the event, deleted once the stream has it; the relay republishes what is left. A
 * row of its own, narrow: marking the event row itself rewrote a kilobyte and its index entries.
 */
export const EventOutboxEntity = defineEntity({
  name: 'EventOutbox',
  tableName: 'event_outbox',
  properties: {
    /** The event's time-ordered id: the relay takes the oldest first, and those older than its delay. */
    eventId: p.uuid().primary(),
  },
});
