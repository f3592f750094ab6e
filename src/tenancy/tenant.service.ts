import { LockMode } from '@mikro-orm/core';
import { z } from 'zod';
import type { EntityManager, Orm } from '../db/orm.ts';
import type { AuditEntryInput, AuditService } from '../audit/audit.service.ts';
import { changes, type Change } from '../audit/changes.ts';
import { NotFoundError } from '../errors.ts';
import { parse, text } from '../input.ts';
import { findPlatformPage, type Page, type PageRequest } from '../pagination.ts';
import { demand, scopes } from '../permissions.ts';
import type { Actor } from './actor.ts';
import { createApiTokenInput, type ApiTokenService, type IssuedToken } from './api-token.service.ts';
import { ApiTokenEntity } from './api-token.entity.ts';
import type { AuthService } from './auth.service.ts';
import { TenantEntity, type Tenant } from './tenant.entity.ts';

const maxWebhooks = z.number().int().min(0).max(100_000);
const requestsPerSecond = z.number().int().min(1).max(1_000_000);

export const createTenantInput = z.object({
  name: text(255),
  maxWebhooks: maxWebhooks.nullish(),
  requestsPerSecond: requestsPerSecond.nullish(),
});
export type CreateTenantInput = z.input<typeof createTenantInput>;

const notNull = 'cannot be null: omit it to keep the value';

/** Merge-patch: an omitted field stays; `requestsPerSecond: null` returns to the configured default. */
export const updateTenantInput = z.object({
  id: z.string(),
  name: text(255)
    .nullish()
    .refine((value) => value !== null, notNull),
  maxWebhooks: maxWebhooks.nullish().refine((value) => value !== null, notNull),
  requestsPerSecond: requestsPerSecond.nullish(),
});
export type UpdateTenantInput = z.input<typeof updateTenantInput>;

export const suspendTenantInput = z.object({ id: z.string(), reason: text(500) });
export type SuspendTenantInput = z.input<typeof suspendTenantInput>;

/** A token the operator issues for a tenant: any scopes, DASHBOARD unless another client is named. */
export const issueTenantTokenInput = createApiTokenInput.extend({ tenantId: z.string() });
export type IssueTenantTokenInput = z.input<typeof issueTenantTokenInput>;

export interface TenantFilter {
  /** Only suspended tenants (true) or only active ones (false). */
  suspended?: boolean | null;
}

const AUDITED = ['name', 'maxWebhooks', 'requestsPerSecond', 'suspendedAt', 'suspendedReason'] as const;

/**
 * Tenants, administered by the operator. Each change is audited in the tenant's own chain and in
 * the platform's. A
 * suspended tenant's tokens are refused (its open sockets close) and its deliveries pause
 * (PAUSED, no attempt made) until it is resumed; nothing it had is lost.
 */
export class TenantService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly tokens: ApiTokenService;
  private readonly auth: AuthService;

  constructor(deps: { orm: Orm; audit: AuditService; tokens: ApiTokenService; auth: AuthService }) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.tokens = deps.tokens;
    this.auth = deps.auth;
  }

  /** A tenant and its first token (DASHBOARD, every scope). */
  async create(actor: Actor, raw: CreateTenantInput): Promise<{ tenant: Tenant } & IssuedToken> {
    demand(actor, 'tenants.manage');
    const input = parse(createTenantInput, raw);
    return this.audit.transact(actor, async (tx, record) => {
      const tenant = tx.create(TenantEntity, {
        name: input.name,
        maxWebhooks: input.maxWebhooks ?? 100,
        requestsPerSecond: input.requestsPerSecond ?? null,
        suspendedAt: null,
        suspendedReason: null,
      });
      await tx.flush();
      this.entries('tenant.created', tenant, changes(null, tenant, AUDITED)).forEach(record);
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

  /** Tenants by id: any for the operator, the caller's own for a token; null for the rest. */
  async getMany(actor: Actor, ids: readonly string[]): Promise<(Tenant | null)[]> {
    const wanted = ids.filter(
      (id) => z.uuid().safeParse(id).success && (actor.admin || id === actor.tenantId),
    );
    const found =
      wanted.length === 0 ? [] : await this.orm.em.fork().find(TenantEntity, { id: { $in: wanted } });
    const byId = new Map(found.map((tenant) => [tenant.id, tenant]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** Every tenant, newest first. */
  async list(actor: Actor, filter: TenantFilter, page: PageRequest): Promise<Page<Tenant>> {
    demand(actor, 'tenants.manage');
    const { suspended } = filter;
    return findPlatformPage(this.orm.em.fork(), TenantEntity, page, (query) =>
      query.$if(suspended != null, (q) => q.where('suspended_at', suspended ? 'is not' : 'is', null)),
    );
  }

  /** Changes a tenant's name or plan limits. */
  async update(actor: Actor, raw: UpdateTenantInput): Promise<Tenant> {
    demand(actor, 'tenants.manage');
    const input = parse(updateTenantInput, raw);
    return this.change(actor, input.id, 'tenant.updated', (tenant) => {
      if (input.name != null) tenant.name = input.name;
      if (input.maxWebhooks != null) tenant.maxWebhooks = input.maxWebhooks;
      if (input.requestsPerSecond !== undefined) tenant.requestsPerSecond = input.requestsPerSecond;
    });
  }

  /**
   * Suspends a tenant: its tokens stop working at once in this process (its open sockets close)
   * and within TOKEN_CACHE_TTL_MS in the others; workers pause its deliveries as they come up.
   * Suspending a suspended tenant changes nothing.
   */
  async suspend(actor: Actor, raw: SuspendTenantInput): Promise<Tenant> {
    demand(actor, 'tenants.manage');
    const input = parse(suspendTenantInput, raw);
    const tenant = await this.change(actor, input.id, 'tenant.suspended', (tenant) => {
      if (tenant.suspendedAt) return false;
      tenant.suspendedAt = new Date();
      tenant.suspendedReason = input.reason;
    });
    const tokens = await this.orm.em
      .fork()
      .find(ApiTokenEntity, { tenantId: tenant.id, revokedAt: null }, { filters: false, fields: ['id'] });
    this.auth.tenantChanged(tokens.map((token) => token.id));
    return tenant;
  }

  /**
   * Resumes a suspended tenant: its tokens work again, and the scheduler queues its paused
   * deliveries within seconds (Parking.resumePaused). Resuming an active tenant changes nothing.
   */
  async resume(actor: Actor, id: string): Promise<Tenant> {
    demand(actor, 'tenants.manage');
    const tenant = await this.change(actor, id, 'tenant.resumed', (tenant) => {
      if (!tenant.suspendedAt) return false;
      tenant.suspendedAt = null;
      tenant.suspendedReason = null;
    });
    this.auth.tenantChanged();
    return tenant;
  }

  /** Issues a token for an existing tenant (a lost first token, a new integration). */
  async issueToken(actor: Actor, raw: IssueTenantTokenInput): Promise<IssuedToken> {
    demand(actor, 'tenants.manage');
    const input = parse(issueTenantTokenInput, raw);
    return this.audit.transact(actor, async (tx, record) => {
      const tenant = await this.lockTenant(tx, input.tenantId);
      const issued = await this.tokens.issue(tx, record, tenant.id, {
        name: input.name,
        scopes: input.scopes,
        client: input.client ?? 'DASHBOARD',
        expiresAt: input.expiresAt ?? null,
      });
      const { apiToken } = issued;
      // The tenant's chain has the token's own entry; the platform's says whose it is.
      record({
        action: 'tenant.token_issued',
        relationName: 'Tenant',
        relationId: tenant.id,
        related: { type: 'Tenant', id: tenant.id, name: tenant.name },
        metadata: {
          apiTokenId: apiToken.id,
          name: apiToken.name,
          scopes: apiToken.scopes,
          client: apiToken.client,
        },
      });
      return issued;
    });
  }

  /**
   * Applies `apply` to the locked tenant and audits what changed in its chain; `apply` returning
   * false, or changing nothing, records nothing.
   */
  private async change(
    actor: Actor,
    id: string,
    action: string,
    apply: (tenant: Tenant) => false | void,
  ): Promise<Tenant> {
    return this.audit.transact(actor, async (tx, record) => {
      const tenant = await this.lockTenant(tx, id);
      const before = { ...tenant };
      if (apply(tenant) === false) return tenant;
      const changed = changes(before, tenant, AUDITED);
      if (Object.keys(changed).length > 0) this.entries(action, tenant, changed).forEach(record);
      return tenant;
    });
  }

  private async lockTenant(tx: EntityManager, id: string): Promise<Tenant> {
    const tenant = z.uuid().safeParse(id).success
      ? await tx.findOne(TenantEntity, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE })
      : null;
    if (!tenant) throw new NotFoundError('Tenant', id);
    return tenant;
  }

  /**
   * A change's entries: one in the tenant's own chain, where the tenant reads it, and the same in
   * the operator's (platform) chain, where the operator and its SIEM export see who did what.
   */
  private entries(action: string, tenant: Tenant, changed: Record<string, Change>): AuditEntryInput[] {
    const entry = {
      action,
      relationName: 'Tenant',
      relationId: tenant.id,
      related: { type: 'Tenant', id: tenant.id, name: tenant.name },
      metadata: { changes: changed },
    };
    return [{ ...entry, tenantId: tenant.id }, entry];
  }
}
