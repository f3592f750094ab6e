import type { EntityManager, Orm } from './orm.ts';

/** A fresh EntityManager that sees only the tenant's rows (every tenant entity has tenantFilter). */
export function tenantEm(orm: Orm, tenant: { tenantId: string }): EntityManager {
  const em = orm.em.fork();
  em.setFilterParams('tenant', { tenantId: tenant.tenantId });
  return em;
}
