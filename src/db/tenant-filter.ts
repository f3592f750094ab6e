/**
 * Every tenant-owned entity declares this filter. An EntityManager from `tenantEm`
 * (tenant-scope.ts) applies it to find, count, nativeUpdate and nativeDelete; one without the
 * tenant parameter throws instead of reading across tenants. (Query builders are not filtered:
 * tenant data is not read with them, and page queries add the tenant themselves, see findPage.)
 */
export const tenantFilter = {
  tenant: {
    name: 'tenant',
    cond: (args: { tenantId: string }) => ({ tenantId: args.tenantId }),
    default: true,
  },
};
