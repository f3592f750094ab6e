import { ForbiddenError, InvalidInputError } from '../../errors.ts';
import type { IssuedToken } from '../../tenancy/api-token.service.ts';
import type { Tenant } from '../../tenancy/tenant.entity.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { ApiTokenRef } from './api-token.ts';

export const TenantRef = builder.objectRef<Tenant>('Tenant');
builder.node(TenantRef, {
  description: 'A company of the host.',
  id: { resolve: (tenant) => tenant.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'maxWebhooks' in value,
  // A caller sees its own tenant only.
  loadMany: loadPermitted('Tenant', 'viewer.read', async (ids, ctx) => {
    const tenant = await ctx.services.tenants.current(ctx.actor);
    return ids.map((id) => (tenant?.id === id ? tenant : null));
  }),
  fields: (t) => ({
    name: t.exposeString('name'),
    maxWebhooks: t.exposeInt('maxWebhooks', { description: 'Plan limit on webhooks.' }),
    requestsPerSecond: t.int({
      nullable: true,
      description: "Plan limit on each token's API requests a second; null: the configured default.",
      resolve: (tenant) => tenant.requestsPerSecond ?? null,
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const CreateTenantInput = builder.inputType('CreateTenantInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    maxWebhooks: t.int({ description: 'Plan limit; 100 when omitted.' }),
    requestsPerSecond: t.int({
      description:
        "Plan limit on each token's API requests a second; HERALD_RATE_LIMIT_PER_SECOND when omitted.",
    }),
  }),
});

const CreateTenantPayload = builder
  .objectRef<{ tenant: Tenant } & IssuedToken>('CreateTenantPayload')
  .implement({
    fields: (t) => ({
      tenant: t.field({ type: TenantRef, resolve: (p) => p.tenant }),
      apiToken: t.field({ type: ApiTokenRef, resolve: (p) => p.apiToken }),
      token: t.exposeString('token', {
        description: 'The first token (DASHBOARD, every scope). Shown only here.',
      }),
    }),
  });

builder.mutationFields((t) => ({
  createTenant: t.field({
    type: CreateTenantPayload,
    description: 'Creates a tenant and its first token (operator only).',
    authScopes: { can: 'tenants.create' },
    args: { input: t.arg({ type: CreateTenantInput, required: true }) },
    errors: {
      types: [InvalidInputError, ForbiddenError],
      directResult: true,
      union: { name: 'CreateTenantResult' },
    },
    resolve: (_root, { input }, ctx) => ctx.services.tenants.create(ctx.actor, input),
  }),
}));
