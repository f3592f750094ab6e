import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Orm } from '../../db/orm.ts';
import { operatorActor, type Actor, type RequestInfo } from './actor.ts';
import { ApiTokenEntity } from './api-token.entity.ts';
import { tokenHash } from './token-secret.ts';

/** lastUsedAt is written at most this often per token, not on every request. */
const LAST_USED_PRECISION_MS = 60_000;

export class AuthService {
  /** Emits 'revoked' with a token id once a revocation committed in this process. */
  readonly revocations = new EventEmitter<{ revoked: [tokenId: string] }>();
  private readonly orm: Orm;
  private readonly operatorHash: Buffer;

  constructor(orm: Orm, operatorToken: string) {
    this.orm = orm;
    this.operatorHash = Buffer.from(tokenHash(operatorToken), 'hex');
  }

  /** Of these token ids, those that still work: not revoked, not expired. */
  async stillValid(tokenIds: readonly string[]): Promise<Set<string>> {
    if (tokenIds.length === 0) return new Set();
    const rows = await this.orm.em.fork().find(
      ApiTokenEntity,
      {
        id: { $in: [...tokenIds] },
        revokedAt: null,
        $or: [{ expiresAt: null }, { expiresAt: { $gt: new Date() } }],
      },
      { filters: false, fields: ['id'] },
    );
    return new Set(rows.map((row) => row.id));
  }

  /**
   * The actor a bearer token stands for, or null (missing, unknown, revoked or expired): the
   * transport answers 401 or closes the socket with 4401. Looked up on every call, so a
   * revocation takes effect at once.
   */
  async authenticate(authorization: string | null | undefined, request: RequestInfo): Promise<Actor | null> {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) return null;
    const hash = tokenHash(token);
    if (timingSafeEqual(Buffer.from(hash, 'hex'), this.operatorHash))
      return operatorActor('operator', request);

    const em = this.orm.em.fork();
    // Authentication is the one lookup that comes before knowing the tenant.
    const row = await em.findOne(ApiTokenEntity, { tokenHash: hash }, { filters: false });
    const now = new Date();
    if (!row || row.revokedAt || (row.expiresAt && row.expiresAt <= now)) return null;
    if (!row.lastUsedAt || now.getTime() - row.lastUsedAt.getTime() > LAST_USED_PRECISION_MS) {
      await em.nativeUpdate(ApiTokenEntity, { id: row.id }, { lastUsedAt: now }, { filters: false });
    }
    return {
      kind: 'token',
      tenantId: row.tenantId,
      admin: false,
      tokenId: row.id,
      name: row.name,
      client: row.client,
      scopes: new Set(row.scopes),
      expiresAt: row.expiresAt ?? null,
      request,
    };
  }
}
