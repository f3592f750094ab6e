import { createHash } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { AuditLog } from './audit-log.entity.ts';

/** previousHash of a chain's first entry. */
export const GENESIS_HASH = '0'.repeat(64);

/**
 * The hash of an entry: SHA-256 over the RFC 8785 canonical JSON of every field but the hash
 * itself, the previous entry's hash included. Version 1 of the serialisation.
 */
export function auditHash(entry: Omit<AuditLog, 'hash'>): string {
  const canonical = canonicalize({
    v: 1,
    id: entry.id,
    tenantId: entry.tenantId,
    sequence: entry.sequence,
    action: entry.action,
    executor: entry.executor,
    related: entry.related ?? null,
    relationName: entry.relationName ?? null,
    relationId: entry.relationId ?? null,
    metadata: entry.metadata,
    ip: entry.ip ?? null,
    userAgent: entry.userAgent ?? null,
    requestId: entry.requestId ?? null,
    createdAt: entry.createdAt.toISOString(),
    previousHash: entry.previousHash,
  });
  return createHash('sha256').update(canonical!).digest('hex');
}
