import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { tenantFilter } from '../db/tenant-filter.ts';
import { appendOnly } from './audit-log.entity.ts';

/**
 * A keyed attestation of a tenant's chain head: `mac` (HMAC-SHA256 under a key that never enters
 * the database) covers the tenant, the head's sequence and hash, the time, and the previous
 * checkpoint's mac, so checkpoints form a chain of their own. Append-only like audit_logs (the
 * migration adds the TRUNCATE trigger by hand). The primary key and the unique previous mac make
 * a tenant's checkpoints one line with no fork: of workers racing to write the next checkpoint,
 * one wins and the others insert nothing.
 */
export const AuditCheckpointEntity = defineEntity({
  name: 'AuditCheckpoint',
  tableName: 'audit_checkpoints',
  filters: tenantFilter,
  properties: {
    tenantId: p.uuid().primary(),
    /** The sequence of the entry that was the chain head. */
    sequence: p.bigint('number').primary(),
    /** That entry's hash. */
    hash: p.string().length(64),
    /** The mac of the tenant's checkpoint before; CHECKPOINT_GENESIS_MAC for the first. */
    previousMac: p.string().length(64),
    mac: p.string().length(64),
    createdAt: p.datetime(),
  },
  uniques: [
    { properties: ['tenantId', 'previousMac'], name: 'audit_checkpoints_tenant_previous_mac_unique' },
  ],
  triggers: [appendOnly('audit_checkpoints')],
});
export type AuditCheckpoint = InferEntity<typeof AuditCheckpointEntity>;
