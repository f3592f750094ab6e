import { LockMode } from '@mikro-orm/core';
import { z } from 'zod';
import type { EntityManager, Orm } from '../db/orm.ts';
import { findByIds } from '../db/by-ids.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import type { AuditService, Recorder } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { ForbiddenError, NotFoundError } from '../errors.ts';
import { parse, STORABLE_DATE_RANGE, storableDate, text } from '../input.ts';
import { findPage, type Page, type PageRequest } from '../pagination.ts';
import { scopes } from '../permissions.ts';
import { apiClients, type Actor } from './actor.ts';
import { ApiTokenEntity, type ApiToken } from './api-token.entity.ts';
import type { AuthService } from './auth.service.ts';
import { newTokenSecret, tokenHash } from './token-secret.ts';

export const createApiTokenInput = z.object({
  name: text(255),
  scopes: z
    .array(z.enum(scopes, { error: (issue) => `unknown scope "${String(issue.input)}"` }))
    .min(1)
    .max(scopes.length)
    .refine((list) => new Set(list).size === list.length, 'each scope once'),
  client: z.enum(apiClients).nullish(),
  expiresAt: z
    .date()
    .refine(storableDate, STORABLE_DATE_RANGE)
    .refine((date) => date.getTime() > Date.now(), 'must be in the future')
    .nullish(),
});
export type CreateApiTokenInput = z.input<typeof createApiTokenInput>;

export interface IssuedToken {
  apiToken: ApiToken;
  /** The bearer token itself: returned once, never stored. */
  token: string;
}

const AUDITED = ['name', 'prefix', 'scopes', 'dataScopes', 'client', 'expiresAt', 'revokedAt'] as const;

export class ApiTokenService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly auth: AuthService;

  constructor(orm: Orm, audit: AuditService, auth: AuthService) {
    this.orm = orm;
    this.audit = audit;
    this.auth = auth;
  }

  /** A token may only grant scopes it holds, and an integration only tokens of its own client kind. */
  async create(actor: Actor, raw: CreateApiTokenInput): Promise<IssuedToken> {
    const input = parse(createApiTokenInput, raw);
    const missing = input.scopes.filter((scope) => !actor.scopes.has(scope));
    if (missing.length > 0)
      throw new ForbiddenError(`cannot grant scopes this token does not hold: ${missing.join(', ')}`);
    const client = input.client ?? actor.client;
    if (actor.client !== 'DASHBOARD' && client !== actor.client) {
      throw new ForbiddenError(`a ${actor.client} token can only create ${actor.client} tokens`);
    }
    // A token cannot outlive the one that made it.
    const callerExpiry = actor.expiresAt;
    if (callerExpiry && (!input.expiresAt || input.expiresAt > callerExpiry)) {
      throw new ForbiddenError(
        `this token expires at ${callerExpiry.toISOString()}; a token it creates must expire by then`,
      );
    }
    return this.audit.transact(actor, (tx, record) =>
      this.issue(tx, record, actor.tenantId, { ...input, client, expiresAt: input.expiresAt ?? null }),
    );
  }

  /**
   * Creates a token inside a caller's transaction; also used when a tenant is created with its
   * first token.
   */
  async issue(
    tx: EntityManager,
    record: Recorder,
    tenantId: string,
    input: Pick<ApiToken, 'name' | 'scopes' | 'client' | 'expiresAt'> &
      Partial<Pick<ApiToken, 'dataScopes' | 'appInstallationId'>>,
  ): Promise<IssuedToken> {
    const token = newTokenSecret();
    const apiToken = tx.create(ApiTokenEntity, {
      tenantId,
      name: input.name,
      tokenHash: tokenHash(token),
      prefix: token.slice(0, 12),
      scopes: input.scopes,
      client: input.client,
      expiresAt: input.expiresAt,
      dataScopes: input.dataScopes ?? null,
      appInstallationId: input.appInstallationId ?? null,
    });
    await tx.flush();
    record({
      tenantId,
      action: 'api_token.created',
      relationName: 'ApiToken',
      relationId: apiToken.id,
      related: { type: 'ApiToken', id: apiToken.id, name: apiToken.name },
      metadata: { changes: changes(null, apiToken, AUDITED) },
    });
    return { apiToken, token };
  }

  /**
   * Revoked at once in this process: its token cache is emptied and open sockets of the token are
   * closed. Other processes refuse the token once their cached copy expires (TOKEN_CACHE_TTL_MS)
   * and close its sockets at their next check. Revoking twice changes nothing.
   */
  async revoke(actor: Actor, id: string): Promise<ApiToken> {
    const apiToken = await this.audit.transact(actor, async (tx, record) => {
      // Locked: two concurrent revocations record one entry.
      const apiToken = z.uuid().safeParse(id).success
        ? await tx.findOne(ApiTokenEntity, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE })
        : null;
      if (!apiToken) throw new NotFoundError('ApiToken', id);
      if (actor.client !== 'DASHBOARD' && apiToken.client !== actor.client) {
        throw new ForbiddenError(`a ${actor.client} token can only revoke ${actor.client} tokens`);
      }
      if (apiToken.revokedAt) return apiToken;
      const before = { ...apiToken };
      apiToken.revokedAt = new Date();
      record({
        action: 'api_token.revoked',
        relationName: 'ApiToken',
        relationId: apiToken.id,
        related: { type: 'ApiToken', id: apiToken.id, name: apiToken.name },
        metadata: { changes: changes(before, apiToken, AUDITED) },
      });
      return apiToken;
    });
    this.auth.revocations.emit('revoked', apiToken.id);
    return apiToken;
  }

  async list(actor: Actor, page: PageRequest): Promise<Page<ApiToken>> {
    return findPage(tenantEm(this.orm, actor), ApiTokenEntity, page);
  }

  getMany(actor: Actor, ids: readonly string[]): Promise<(ApiToken | null)[]> {
    return findByIds(tenantEm(this.orm, actor), ApiTokenEntity, ids);
  }
}
