import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';

/** A company of the host. */
export const TenantEntity = defineEntity({
  name: 'Tenant',
  tableName: 'tenants',
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    name: p.string().length(255),
    /** Plan limit: how many webhooks the tenant may have. */
    maxWebhooks: p.integer().default(100),
    /** Plan limit: GraphQL requests a second each of its tokens may make; null: the configured default. */
    requestsPerSecond: p.integer().nullable(),
    /** Set while the operator has the tenant suspended: its tokens are refused, its deliveries paused. */
    suspendedAt: p.datetime().nullable(),
    suspendedReason: p.string().length(500).nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
});
export type Tenant = InferEntity<typeof TenantEntity>;
