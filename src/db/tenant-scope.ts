import type { Actor } from '../tenancy/actor.ts';
import type { EntityManager, Orm } from './orm.ts';

/**
 * Every tenant-owned entity declares this filter. An EntityManager from `tenantEm` applies it to
 * find, count, nativeUpdate and nativeDelete; one without the tenant parameter throws instead of
 * reading across tenants. (Query builders are not filtered: domain code does not use them on
 * tenant data.)
 */
export const tenantFilter = {
  tenant: {
    name: 'tenant',
    cond: (args: { tenantId: string }) => ({ tenantId: args.tenantId }),
    default: true,
  },
};

/** A fresh EntityManager that sees only the actor's tenant. */
export function tenantEm(orm: Orm, actor: Pick<Actor, 'tenantId'>): EntityManager {
  const em = orm.em.fork();
  em.setFilterParams('tenant', { tenantId: actor.tenantId });
  return em;
}
