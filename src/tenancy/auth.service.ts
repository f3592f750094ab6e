import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LRUCache } from 'lru-cache';
import type { Orm } from '../db/orm.ts';
import type { Scope } from '../permissions.ts';
import { operatorActor, type Actor, type RequestInfo } from './actor.ts';
import { ApiTokenEntity, type ApiToken } from './api-token.entity.ts';
import { TenantEntity } from './tenant.entity.ts';
import { tokenHash } from './token-secret.ts';

/** lastUsedAt is written at most this often per token, not on every request. */
const LAST_USED_PRECISION_MS = 60_000;

/**
 * How long a process trusts a token row it looked up: how late a revocation made in another
 * process takes effect here (open sockets are checked as often, see TokenSockets). A revocation
 * made in this process empties the cache at once.
 */
export const TOKEN_CACHE_TTL_MS = 2_000;

/** What authentication needs of a live token. */
interface TokenRow extends Pick<ApiToken, 'id' | 'tenantId' | 'name' | 'client'> {
  scopes: ReadonlySet<Scope>;
  dataScopes: ReadonlySet<string> | null;
  appInstallationId: string | null;
  expiresAt: Date | null;
  lastUsedAt: Date | null;
  requestsPerSecond: number | null;
  /** Its tenant is suspended: refused, and kept so that refusing costs no query. */
  suspended: boolean;
}

export class AuthService {
  /**
   * Emits 'revoked' with a token id once a revocation committed in this process, or a suspension
   * of the token's tenant (with the reason its sessions end for).
   */
  readonly revocations = new EventEmitter<{ revoked: [tokenId: string, reason?: string] }>();
  /** Emits 'changed' once a change to tenants committed in this process: cached rows are stale. */
  private readonly tenantChanges = new EventEmitter<{ changed: [] }>();
  private readonly orm: Orm;
  private readonly operatorHash: Buffer;
  /** Live token rows by token hash; revoked and unknown tokens are not kept. */
  private readonly tokens = new LRUCache<string, TokenRow>({ max: 10_000, ttl: TOKEN_CACHE_TTL_MS });
  /** Counts revocations, so a lookup that raced one does not cache what it read before it. */
  private revocationCount = 0;

  constructor(orm: Orm, operatorToken: string) {
    this.orm = orm;
    this.operatorHash = Buffer.from(tokenHash(operatorToken), 'hex');
    const forget = () => {
      this.revocationCount++;
      this.tokens.clear();
    };
    this.revocations.on('revoked', forget);
    this.tenantChanges.on('changed', forget);
  }

  /**
   * A tenant was suspended or resumed in this process: cached rows are dropped at once, and the
   * sessions of `endedTokenIds` end (their sockets close with 4401) for `reason`.
   */
  tenantChanged(endedTokenIds: readonly string[] = [], reason = 'tenant suspended'): void {
    this.tenantChanges.emit('changed');
    for (const tokenId of endedTokenIds) this.revocations.emit('revoked', tokenId, reason);
  }

  /** Of these token ids, those that still work: not revoked, not expired, their tenant not suspended. */
  async stillValid(tokenIds: readonly string[]): Promise<Set<string>> {
    if (tokenIds.length === 0) return new Set();
    const em = this.orm.em.fork();
    const rows = await em.find(
      ApiTokenEntity,
      {
        id: { $in: [...tokenIds] },
        revokedAt: null,
        $or: [{ expiresAt: null }, { expiresAt: { $gt: new Date() } }],
      },
      { filters: false, fields: ['id', 'tenantId'] },
    );
    const suspended = await em.find(
      TenantEntity,
      { id: { $in: [...new Set(rows.map((row) => row.tenantId))] }, suspendedAt: { $ne: null } },
      { fields: ['id'] },
    );
    const off = new Set(suspended.map((tenant) => tenant.id));
    return new Set(rows.filter((row) => !off.has(row.tenantId)).map((row) => row.id));
  }

  /**
   * The actor a bearer token stands for, or null (missing, unknown, revoked, expired, or its
   * tenant suspended): the transport answers 401 or closes the socket with 4401. A revocation or
   * suspension in this process takes effect at once, one in another process within
   * TOKEN_CACHE_TTL_MS; expiry is checked on every call.
   */
  async authenticate(authorization: string | null | undefined, request: RequestInfo): Promise<Actor | null> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) return null;
    const hash = tokenHash(token);
    if (timingSafeEqual(Buffer.from(hash, 'hex'), this.operatorHash))
      return operatorActor('operator', request);

    const row = this.tokens.get(hash) ?? (await this.lookUp(hash));
    const now = new Date();
    if (!row || row.suspended || (row.expiresAt && row.expiresAt <= now)) return null;
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
      // Noted before the write, so that concurrent requests with the token do not repeat it.
      row.lastUsedAt = now;
      await this.orm.em
        .fork()
        .nativeUpdate(ApiTokenEntity, { id: row.id }, { lastUsedAt: now }, { filters: false });
    }
    return {
      kind: 'token',
      tenantId: row.tenantId,
      admin: false,
      tokenId: row.id,
      name: row.name,
      client: row.client,
      scopes: row.scopes,
      expiresAt: row.expiresAt,
      requestsPerSecond: row.requestsPerSecond,
      dataScopes: row.dataScopes,
      appInstallationId: row.appInstallationId,
      request,
    };
  }

  /** The row of a live token's hash, cached unless a revocation happened meanwhile. */
  private async lookUp(hash: string): Promise<TokenRow | undefined> {
    const revocations = this.revocationCount;
    // Authentication is the one lookup that comes before knowing the tenant.
    const em = this.orm.em.fork();
    const found = await em.findOne(ApiTokenEntity, { tokenHash: hash }, { filters: false });
    if (!found || found.revokedAt) return undefined;
    const tenant = await em.findOne(
      TenantEntity,
      { id: found.tenantId },
      { fields: ['requestsPerSecond', 'suspendedAt'] },
    );
    if (!tenant) return undefined;
    const row: TokenRow = {
      id: found.id,
      tenantId: found.tenantId,
      name: found.name,
      client: found.client,
      scopes: new Set(found.scopes),
      dataScopes: found.dataScopes ? new Set(found.dataScopes) : null,
      appInstallationId: found.appInstallationId ?? null,
      expiresAt: found.expiresAt ?? null,
      lastUsedAt: found.lastUsedAt ?? null,
      requestsPerSecond: tenant.requestsPerSecond ?? null,
      suspended: tenant.suspendedAt != null,
    };
    if (revocations === this.revocationCount) this.tokens.set(hash, row);
    return row;
  }
}
