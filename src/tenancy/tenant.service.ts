import { z } from 'zod';
import type { Orm } from '../db/orm.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { parse, text } from '../input.ts';
import { demand, scopes } from '../permissions.ts';
import type { Actor } from './actor.ts';
import type { ApiTokenService, IssuedToken } from './api-token.service.ts';
import { TenantEntity, type Tenant } from './tenant.entity.ts';

export const createTenantInput = z.object({
  name: text(255),
  maxWebhooks: z.number().int().min(0).max(100_000).nullish(),
  requestsPerSecond: z.number().int().min(1).max(1_000_000).nullish(),
});
export type CreateTenantInput = z.input<typeof createTenantInput>;

export class TenantService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly tokens: ApiTokenService;

  constructor(orm: Orm, audit: AuditService, tokens: ApiTokenService) {
    this.orm = orm;
    this.audit = audit;
    this.tokens = tokens;
  }

  /** Operator only: a tenant and its first token (DASHBOARD, every scope), audited in the tenant's own chain. */
  async create(actor: Actor, raw: CreateTenantInput): Promise<{ tenant: Tenant } & IssuedToken> {
    demand(actor, 'tenants.create');
    const input = parse(createTenantInput, raw);
    return this.audit.transact(actor, async (tx, record) => {
      const tenant = tx.create(TenantEntity, {
        name: input.name,
        maxWebhooks: input.maxWebhooks ?? 100,
        requestsPerSecond: input.requestsPerSecond ?? null,
      });
      await tx.flush();
      record({
        tenantId: tenant.id,
        action: 'tenant.created',
        relationName: 'Tenant',
        relationId: tenant.id,
        metadata: { changes: changes(null, tenant, ['name', 'maxWebhooks', 'requestsPerSecond']) },
      });
      const issued = await this.tokens.issue(tx, record, tenant.id, {
        name: 'Initial token',
        scopes: [...scopes],
        client: 'DASHBOARD',
        expiresAt: null,
      });
      return { tenant, ...issued };
    });
  }

  /** The actor's tenant; null for the operator, who belongs to none. */
  async current(actor: Actor): Promise<Tenant | null> {
    if (actor.kind === 'operator') return null;
    return this.orm.em.fork().findOne(TenantEntity, { id: actor.tenantId });
  }
}
