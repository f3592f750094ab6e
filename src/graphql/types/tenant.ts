import { ForbiddenError, InvalidInputError, NotFoundError } from '../../errors.ts';
import type { IssuedToken } from '../../tenancy/api-token.service.ts';
import type { Tenant } from '../../tenancy/tenant.entity.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { ApiClientRef, ApiTokenRef } from './api-token.ts';

export const TenantRef = builder.objectRef<Tenant>('Tenant');
builder.node(TenantRef, {
  description: 'A company of the host.',
  id: { resolve: (tenant) => tenant.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'maxWebhooks' in value,
  // A token sees its own tenant only, the operator every tenant.
  loadMany: loadPermitted('Tenant', 'viewer.read', (ids, ctx) =>
    ctx.services.tenants.getMany(ctx.actor, ids),
  ),
  fields: (t) => ({
    name: t.exposeString('name'),
    maxWebhooks: t.exposeInt('maxWebhooks', { description: 'Plan limit on webhooks.' }),
    requestsPerSecond: t.int({
      nullable: true,
      description: "Plan limit on each token's API requests a second; null: the configured default.",
      resolve: (tenant) => tenant.requestsPerSecond ?? null,
    }),
    suspendedAt: t.expose('suspendedAt', {
      type: 'DateTime',
      nullable: true,
      description:
        'Set while the operator has the tenant suspended: its tokens are refused, its deliveries paused.',
    }),
    suspendedReason: t.exposeString('suspendedReason', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const TenantConnection = builder.connectionObject({ type: TenantRef, name: 'TenantConnection' });

const TenantFilter = builder.inputType('TenantFilter', {
  fields: (t) => ({
    suspended: t.boolean({ description: 'Only suspended tenants (true), or only active ones (false).' }),
  }),
});

builder.queryFields((t) => ({
  tenants: t.field({
    type: TenantConnection,
    description: 'Every tenant, newest first (operator only).',
    authScopes: { can: 'tenants.manage' },
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: TenantFilter }),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.tenants.list(ctx.actor, args.filter ?? {}, pageRequest(args))),
  }),
  tenant: t.field({
    type: TenantRef,
    nullable: true,
    description: 'A tenant by id (operator only).',
    authScopes: { can: 'tenants.manage' },
    args: { id: t.arg.globalID({ required: true, for: TenantRef }) },
    resolve: async (_root, { id }, ctx) => (await ctx.services.tenants.getMany(ctx.actor, [id.id]))[0],
  }),
}));

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

const UpdateTenantInput = builder.inputType('UpdateTenantInput', {
  description: 'Merge-patch: an omitted field is unchanged.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: TenantRef }),
    name: t.string(),
    maxWebhooks: t.int(),
    requestsPerSecond: t.int({ description: 'null: back to HERALD_RATE_LIMIT_PER_SECOND.' }),
  }),
});

const SuspendTenantInput = builder.inputType('SuspendTenantInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: TenantRef }),
    reason: t.string({ required: true, description: 'Why, for the audit log and the tenant record.' }),
  }),
});

const ResumeTenantInput = builder.inputType('ResumeTenantInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: TenantRef }) }),
});

const IssueTenantTokenInput = builder.inputType('IssueTenantTokenInput', {
  fields: (t) => ({
    tenantId: t.globalID({ required: true, for: TenantRef }),
    name: t.string({ required: true }),
    scopes: t.stringList({ required: true }),
    client: t.field({ type: ApiClientRef, description: 'DASHBOARD when omitted.' }),
    expiresAt: t.field({ type: 'DateTime' }),
  }),
});

const TenantPayload = (name: string) =>
  builder.objectRef<Tenant>(name).implement({
    fields: (t) => ({ tenant: t.field({ type: TenantRef, resolve: (tenant) => tenant }) }),
  });

const IssueTenantTokenPayload = builder.objectRef<IssuedToken>('IssueTenantTokenPayload').implement({
  fields: (t) => ({
    apiToken: t.field({ type: ApiTokenRef, resolve: (p) => p.apiToken }),
    token: t.exposeString('token', { description: 'The bearer token. Shown only here.' }),
  }),
});

/** The operator's tenant mutations: each refuses input with a typed error and changes nothing. */
const administration = (union: string) => ({
  types: [InvalidInputError, NotFoundError, ForbiddenError],
  directResult: true as const,
  union: { name: union },
});

builder.mutationFields((t) => ({
  updateTenant: t.field({
    type: TenantPayload('UpdateTenantPayload'),
    description: "Changes a tenant's name or plan limits (operator only).",
    authScopes: { can: 'tenants.manage' },
    args: { input: t.arg({ type: UpdateTenantInput, required: true }) },
    errors: administration('UpdateTenantResult'),
    resolve: (_root, { input: { id, ...patch } }, ctx) =>
      ctx.services.tenants.update(ctx.actor, { id: id.id, ...patch }),
  }),
  suspendTenant: t.field({
    type: TenantPayload('SuspendTenantPayload'),
    description:
      'Suspends a tenant (operator only): its tokens get 401 and its open sockets close; its deliveries pause, none is lost.',
    authScopes: { can: 'tenants.manage' },
    args: { input: t.arg({ type: SuspendTenantInput, required: true }) },
    errors: administration('SuspendTenantResult'),
    resolve: (_root, { input }, ctx) =>
      ctx.services.tenants.suspend(ctx.actor, { id: input.id.id, reason: input.reason }),
  }),
  resumeTenant: t.field({
    type: TenantPayload('ResumeTenantPayload'),
    description:
      'Resumes a suspended tenant (operator only): its tokens work again and its paused deliveries go out.',
    authScopes: { can: 'tenants.manage' },
    args: { input: t.arg({ type: ResumeTenantInput, required: true }) },
    errors: administration('ResumeTenantResult'),
    resolve: (_root, { input }, ctx) => ctx.services.tenants.resume(ctx.actor, input.id.id),
  }),
  issueTenantToken: t.field({
    type: IssueTenantTokenPayload,
    description: 'Issues a token for an existing tenant (operator only).',
    authScopes: { can: 'tenants.manage' },
    args: { input: t.arg({ type: IssueTenantTokenInput, required: true }) },
    errors: administration('IssueTenantTokenResult'),
    resolve: (_root, { input }, ctx) =>
      ctx.services.tenants.issueToken(ctx.actor, {
        ...input,
        tenantId: input.tenantId.id,
        scopes: input.scopes as never,
      }),
  }),
  createTenant: t.field({
    type: CreateTenantPayload,
    description: 'Creates a tenant and its first token (operator only).',
    authScopes: { can: 'tenants.manage' },
    args: { input: t.arg({ type: CreateTenantInput, required: true }) },
    errors: {
      types: [InvalidInputError, ForbiddenError],
      directResult: true,
      union: { name: 'CreateTenantResult' },
    },
    resolve: (_root, { input }, ctx) => ctx.services.tenants.create(ctx.actor, input),
  }),
}));
