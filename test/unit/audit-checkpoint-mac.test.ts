import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  CHECKPOINT_GENESIS_MAC,
  auditCheckpointKey,
  checkpointMac,
} from '../../src/audit/audit-checkpoints.ts';

describe('audit checkpoint mac', () => {
  const secretKey = randomBytes(32);
  const key = auditCheckpointKey(secretKey);
  const checkpoint = {
    tenantId: randomUUID(),
    sequence: 1000,
    hash: 'a'.repeat(64),
    previousMac: CHECKPOINT_GENESIS_MAC,
    createdAt: new Date('2026-12-01T10:00:00.123Z'),
  };

  it('derives a key of its own from HERALD_SECRET_KEY unless one is configured', () => {
    expect(key).toHaveLength(32);
    expect(key.equals(secretKey)).toBe(false);
    expect(auditCheckpointKey(secretKey).equals(key)).toBe(true);
    const configured = randomBytes(32);
    expect(auditCheckpointKey(secretKey, configured.toString('base64')).equals(configured)).toBe(true);
  });

  it('covers every field and depends on the key', () => {
    const mac = checkpointMac(key, checkpoint);
    expect(mac).toMatch(/^[0-9a-f]{64}$/);
    expect(checkpointMac(key, { ...checkpoint })).toBe(mac);
    const changed = [
      { ...checkpoint, tenantId: randomUUID() },
      { ...checkpoint, sequence: 1001 },
      { ...checkpoint, hash: 'b'.repeat(64) },
      { ...checkpoint, previousMac: 'c'.repeat(64) },
      { ...checkpoint, createdAt: new Date('2026-12-01T10:00:00.124Z') },
    ];
    for (const other of changed) expect(checkpointMac(key, other)).not.toBe(mac);
    expect(checkpointMac(randomBytes(32), checkpoint)).not.toBe(mac);
  });
});
