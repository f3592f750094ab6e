import { ForbiddenError, InvalidInputError, NotFoundError } from '../../errors.ts';
import { apiClients } from '../../tenancy/actor.ts';
import type { ApiToken } from '../../tenancy/api-token.entity.ts';
import type { IssuedToken } from '../../tenancy/api-token.service.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';

export const ApiClientRef = builder.enumType('ApiClient', {
  description: 'The kind of client a token belongs to; webhooks remember it as managedBy.',
  values: apiClients,
});

export const ApiTokenRef = builder.objectRef<ApiToken>('ApiToken');
builder.node(ApiTokenRef, {
  description: 'A bearer token of a tenant. The token itself is shown once, at creation.',
  id: { resolve: (token) => token.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'tokenHash' in value,
  // node(id) shows tokens only to those who manage them; viewer.token shows the caller its own.
  loadMany: loadPermitted('ApiToken', 'tokens.manage', (ids, ctx) =>
    ctx.services.tokens.getMany(ctx.actor, ids),
  ),
  fields: (t) => ({
    name: t.exposeString('name'),
    prefix: t.exposeString('prefix', {
      description: 'The first characters of the token, to tell tokens apart.',
    }),
    scopes: t.exposeStringList('scopes'),
    client: t.field({ type: ApiClientRef, resolve: (token) => token.client }),
    expiresAt: t.expose('expiresAt', { type: 'DateTime', nullable: true }),
    lastUsedAt: t.expose('lastUsedAt', { type: 'DateTime', nullable: true }),
    revokedAt: t.expose('revokedAt', { type: 'DateTime', nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

const ApiTokenConnection = builder.connectionObject({ type: ApiTokenRef, name: 'ApiTokenConnection' });

builder.queryFields((t) => ({
  apiTokens: t.field({
    type: ApiTokenConnection,
    description: "The tenant's tokens, newest first.",
    authScopes: { can: 'tokens.manage' },
    args: { first: t.arg.int({ validate: firstArg }), after: t.arg.string() },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.tokens.list(ctx.actor, pageRequest(args))),
  }),
}));

const CreateApiTokenInput = builder.inputType('CreateApiTokenInput', {
  fields: (t) => ({
    name: t.string({ required: true }),
    scopes: t.stringList({
      required: true,
      description: 'Scopes to grant; each must be held by the calling token.',
    }),
    client: t.field({ type: ApiClientRef, description: "Defaults to the calling token's client." }),
    expiresAt: t.field({ type: 'DateTime' }),
  }),
});

const CreateApiTokenPayload = builder.objectRef<IssuedToken>('CreateApiTokenPayload').implement({
  fields: (t) => ({
    apiToken: t.field({ type: ApiTokenRef, resolve: (p) => p.apiToken }),
    token: t.exposeString('token', { description: 'The bearer token. Shown only here: store it now.' }),
  }),
});

const RevokeApiTokenInput = builder.inputType('RevokeApiTokenInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: ApiTokenRef }) }),
});

const RevokeApiTokenPayload = builder.objectRef<{ apiToken: ApiToken }>('RevokeApiTokenPayload').implement({
  fields: (t) => ({ apiToken: t.field({ type: ApiTokenRef, resolve: (p) => p.apiToken }) }),
});

builder.mutationFields((t) => ({
  createApiToken: t.field({
    type: CreateApiTokenPayload,
    authScopes: { can: 'tokens.manage' },
    args: { input: t.arg({ type: CreateApiTokenInput, required: true }) },
    errors: {
      types: [InvalidInputError, ForbiddenError],
      directResult: true,
      union: { name: 'CreateApiTokenResult' },
    },
    resolve: (_root, { input }, ctx) =>
      ctx.services.tokens.create(ctx.actor, { ...input, scopes: input.scopes as never }),
  }),
  revokeApiToken: t.field({
    type: RevokeApiTokenPayload,
    description: 'Revokes a token at once, for every process and open socket.',
    authScopes: { can: 'tokens.manage' },
    args: { input: t.arg({ type: RevokeApiTokenInput, required: true }) },
    errors: {
      types: [NotFoundError, ForbiddenError],
      directResult: true,
      union: { name: 'RevokeApiTokenResult' },
    },
    resolve: async (_root, { input }, ctx) => ({
      apiToken: await ctx.services.tokens.revoke(ctx.actor, input.id.id),
    }),
  }),
}));
