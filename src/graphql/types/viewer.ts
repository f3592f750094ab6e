import type { Actor } from '../../tenancy/actor.ts';
import { builder } from '../builder.ts';
import { ApiClientRef, ApiTokenRef } from './api-token.ts';
import { TenantRef } from './tenant.ts';

const ViewerRef = builder.objectRef<Actor>('Viewer').implement({
  description: 'Who the bearer token stands for.',
  fields: (t) => ({
    operator: t.boolean({
      description: 'The operator token: manages tenants and the catalog.',
      resolve: (a) => a.admin,
    }),
    tenant: t.field({
      type: TenantRef,
      nullable: true,
      resolve: (actor, _args, ctx) => ctx.services.tenants.current(actor),
    }),
    token: t.field({
      type: ApiTokenRef,
      nullable: true,
      resolve: async (actor, _args, ctx) =>
        actor.tokenId ? ((await ctx.services.tokens.getMany(actor, [actor.tokenId]))[0] ?? null) : null,
    }),
    client: t.field({ type: ApiClientRef, resolve: (actor) => actor.client }),
    scopes: t.stringList({ resolve: (actor) => [...actor.scopes] }),
  }),
});

builder.queryFields((t) => ({
  viewer: t.field({ type: ViewerRef, resolve: (_root, _args, ctx) => ctx.actor }),
}));
