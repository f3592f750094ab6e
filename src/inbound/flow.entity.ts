import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';
import type { FlowFilter, FlowMapping } from './flow-route.ts';
import type { EventTypeSelector } from './inbound-source.entity.ts';

export const flowStatuses = ['DRAFT', 'INACTIVE', 'DEPLOYED'] as const;
export type FlowStatus = (typeof flowStatuses)[number];

/**
 * A group of inbound sources (its webhooks) with one route into the pipeline: the event type
 * their requests become, an optional filter and an optional mapping. A request is routed only
 * when its webhook and its flow are both DEPLOYED.
 */
export const FlowEntity = defineEntity({
  name: 'Flow',
  tableName: 'flows',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    name: p.string().length(255),
    description: p.string().length(1000).nullable(),
    status: p.string().length(16).$type<FlowStatus>(),
    /** When it was last deployed; kept while it is INACTIVE or DRAFT again. */
    deployedAt: p.datetime().nullable(),
    eventType: p.json<EventTypeSelector>(),
    filter: p.json<FlowFilter>().nullable(),
    mapping: p.json<FlowMapping>().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [{ properties: ['tenantId', 'createdAt', 'id'], name: 'flows_tenant_created_at_id_index' }],
});
export type Flow = InferEntity<typeof FlowEntity>;
