import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';
import type { ApiClient } from '../tenancy/actor.ts';

/** An outgoing subscription: where to POST which events of a tenant. */
export const WebhookEntity = defineEntity({
  name: 'Webhook',
  tableName: 'webhooks',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    name: p.string().length(255).nullable(),
    url: p.string().length(2048),
    isActive: p.boolean().default(true),
    /** Event type names, or patterns ending in `*` (`invoices.*`, `*`). */
    subscribedEvents: p.array(),
    externalId: p.string().length(255).nullable(),
    managedBy: p.string().length(16).$type<ApiClient>(),
    /** An app's webhook: its installation; deleted when the app is uninstalled. */
    appInstallationId: p.uuid().nullable(),
    /** Declared by the app's manifest under this key: reconciled on every upgrade. */
    manifestKey: p.string().length(100).nullable(),
    /** An app's webhook: its payloads carry only what these data scopes allow; null: all of it. */
    dataScopes: p.json<string[]>().nullable(),
    lastSuccessAt: p.datetime().nullable(),
    lastFailureAt: p.datetime().nullable(),
    disabledAt: p.datetime().nullable(),
    disabledReason: p.string().length(1000).nullable(),
    /** The first failure since the last success: auto-disable counts from here. */
    failingSince: p.datetime().nullable(),
    /** Sealed with the secret key (SecretBox); never returned after create or rotate. */
    secret: p.text().lazy(),
    /** The secret before the last rotation: it keeps signing until previousSecretExpiresAt. */
    previousSecret: p.text().nullable().lazy(),
    previousSecretExpiresAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [
    {
      properties: ['tenantId', 'managedBy', 'externalId'],
      name: 'webhooks_tenant_client_external_id_unique',
    },
    { properties: ['appInstallationId', 'manifestKey'], name: 'webhooks_app_installation_key_unique' },
  ],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'webhooks_tenant_created_at_id_index' },
    {
      name: 'webhooks_subscribed_events_index',
      expression:
        'create index "webhooks_subscribed_events_index" on "webhooks" using gin ("subscribed_events")',
    },
  ],
});
export type Webhook = InferEntity<typeof WebhookEntity>;
