import { createHash, timingSafeEqual } from 'node:crypto';
import { scopes, type Actor } from './actor.ts';

/**
 * The tenant the operator token acts for. Until tenants and API tokens exist, Herald serves this
 * one tenant with the operator token from config.
 */
export const OPERATOR_TENANT_ID = '00000000-0000-7000-8000-000000000000';

const digest = (token: string) => createHash('sha256').update(token).digest();

export class AuthService {
  private readonly adminDigest: Buffer;

  constructor(adminToken: string) {
    this.adminDigest = digest(adminToken);
  }

  /** The actor a bearer token stands for, or null: the transport answers 401 / closes the socket. */
  authenticate(authorization: string | undefined | null): Actor | null {
    const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? '')?.[1];
    if (!token) return null;
    // Comparing digests keeps the comparison constant-time whatever the token's length.
    if (!timingSafeEqual(digest(token), this.adminDigest)) return null;
    return { tenantId: OPERATOR_TENANT_ID, admin: true, scopes: new Set(scopes) };
  }
}
