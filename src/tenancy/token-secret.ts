import { createHash, randomBytes } from 'node:crypto';

/** A new bearer token: `hrld_` and 32 random bytes, base64url. */
export const newTokenSecret = (): string => `hrld_${randomBytes(32).toString('base64url')}`;

/** What is stored of a token: its SHA-256, hex. */
export const tokenHash = (token: string): string => createHash('sha256').update(token).digest('hex');
