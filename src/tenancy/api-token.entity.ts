import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';
import type { Scope } from '../permissions.ts';
import type { ApiClient } from './actor.ts';

/** A bearer credential of a tenant. Only the SHA-256 of the token is kept; the token is shown once. */
export const ApiTokenEntity = defineEntity({
  name: 'ApiToken',
  tableName: 'api_tokens',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    name: p.string().length(255),
    tokenHash: p.string().length(64).unique(),
    /** The token's first characters, to tell tokens apart in a list. */
    prefix: p.string().length(16),
    scopes: p.json<Scope[]>(),
    client: p.string().length(16).$type<ApiClient>(),
    /** An app's token: the data scopes of its manifest, which limit what it sees; null for others. */
    dataScopes: p.json<string[]>().nullable(),
    /** An app's token: its installation. */
    appInstallationId: p.uuid().nullable(),
    expiresAt: p.datetime().nullable(),
    lastUsedAt: p.datetime().nullable(),
    revokedAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  indexes: [{ properties: ['tenantId', 'createdAt', 'id'], name: 'api_tokens_tenant_created_at_id_index' }],
});
export type ApiToken = InferEntity<typeof ApiTokenEntity>;
