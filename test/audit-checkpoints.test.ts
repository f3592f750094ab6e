import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { GENESIS_HASH, auditHash } from '../src/audit/audit-hash.ts';
import type { AuditCheckpoint } from '../src/audit/audit-checkpoint.entity.ts';
import type { AuditLog } from '../src/audit/audit-log.entity.ts';
import {
  AuditCheckpoints,
  CHECKPOINT_GENESIS_MAC,
  auditCheckpointKey,
  checkpointMac,
} from '../src/audit/audit-checkpoints.ts';
import { loadConfig } from '../src/config.ts';
import { openOrm, type Orm } from '../src/db/orm.ts';
import { NatsBus } from '../src/bus/nats.ts';
import { streams } from '../src/bus/contracts.ts';
import { createLogger } from '../src/logger.ts';
import { graphql } from './gql/index.ts';
import { modes, rawId, startTestApp, type TenantClient, type TestApp } from './support/app.ts';
import { AuditLogs, CreateApiToken } from './support/operations.ts';
import { sqlConnection } from './support/sql.ts';
import { waitFor } from './support/wait.ts';

const VerifyWithCheckpoints = graphql(`
  query VerifyWithCheckpoints {
    verifyAuditTrail {
      ok
      checked
      firstBrokenSequence
      reason
      checkpointsChecked
      lastCheckpointSequence
      anchorSequence
    }
  }
`);

/** Checkpoints by count only: the interval is far longer than any test. */
const everyFive = { HERALD_AUDIT_CHECKPOINT_EVERY: '5', HERALD_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '3600' };

const verify = async (tenant: TenantClient) =>
  (await tenant.gql(VerifyWithCheckpoints, {})).data!.verifyAuditTrail;

/** Audit entries of the tenant, one token each (a new tenant starts with two). */
async function write(tenant: TenantClient, count: number) {
  for (let i = 0; i < count; i++) {
    const created = (await tenant.gql(CreateApiToken, { input: { name: `e${i}`, scopes: ['audit:read'] } }))
      .data!.createApiToken;
    if (created.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
  }
}

/** Waits for verifyAuditTrail to report the checkpoint at `sequence` as its newest verified one. */
const checkpointedAt = (tenant: TenantClient, sequence: number) =>
  waitFor(
    async () => {
      const verification = await verify(tenant);
      return verification.lastCheckpointSequence === sequence && verification;
    },
    { what: `a checkpoint at sequence ${sequence}`, timeoutMs: 15_000 },
  );

interface ExportLine {
  type?: 'checkpoint';
  sequence: number;
  tenantId: string;
  action?: string;
  hash: string;
  previousMac?: string;
  mac?: string;
  createdAt: string;
  metadata?: unknown;
}

async function exported(
  h: TestApp,
  tenant: TenantClient,
  range: { from?: Date; to?: Date } = {},
): Promise<ExportLine[]> {
  const query = new URLSearchParams(
    Object.entries(range).map(([key, date]) => [key, date.toISOString()] as [string, string]),
  );
  const response = await fetch(`${h.url}/audit/export?${query}`, {
    headers: { authorization: `Bearer ${tenant.token}` },
  });
  return (await response.text())
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as ExportLine);
}

type Sql = Awaited<ReturnType<typeof sqlConnection>>;

/** Raw rows carry times as text: ISO 8601 from to_json, read back into Dates. */
const withDate = <T extends { createdAt: Date }>(rows: T[]) =>
  rows.map((row) => ({ ...row, createdAt: new Date(row.createdAt) }));

const chain = async (sql: Sql, tenantId: string) =>
  withDate(
    await sql.query<AuditLog>(
      `select id, tenant_id as "tenantId", sequence::int as sequence, action, executor, related,
         relation_name as "relationName", relation_id as "relationId", metadata, ip,
         user_agent as "userAgent", request_id as "requestId", to_json(created_at) #>> '{}' as "createdAt",
         previous_hash as "previousHash", hash
       from audit_logs where tenant_id = ? order by sequence`,
      [tenantId],
    ),
  );

const checkpoints = async (sql: Sql, tenantId: string) =>
  withDate(
    await sql.query<AuditCheckpoint>(
      `select tenant_id as "tenantId", sequence::int as sequence, hash, previous_mac as "previousMac", mac,
         to_json(created_at) #>> '{}' as "createdAt"
       from audit_checkpoints where tenant_id = ? order by sequence`,
      [tenantId],
    ),
  );

describe.each(modes)('audit checkpoints every N entries (%s mode)', (mode) => {
  let h: TestApp;

  beforeAll(async () => {
    h = await startTestApp(mode, { env: everyFive });
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('checkpoints the head once N entries are uncovered, verifies it, and exports it after its entry', async () => {
    const tenant = await h.tenant('Counted');
    await write(tenant, 3);
    expect(await checkpointedAt(tenant, 5)).toEqual({
      ok: true,
      checked: 5,
      firstBrokenSequence: null,
      reason: null,
      checkpointsChecked: 1,
      lastCheckpointSequence: 5,
      anchorSequence: 5,
    });
    // The pass that wrote it saw the app's own tenant too, two entries long: not due.
    expect(await verify(h)).toMatchObject({ ok: true, checked: 2, checkpointsChecked: 0 });

    const lines = await exported(h, tenant);
    // Entry 6 is the export's own audit_log.export_started.
    expect(lines.map((line) => (line.type === 'checkpoint' ? 'checkpoint' : line.sequence))).toEqual([
      1,
      2,
      3,
      4,
      5,
      'checkpoint',
      6,
    ]);
    const { mac, createdAt, ...checkpoint } = lines[5]!;
    expect(checkpoint).toEqual({
      type: 'checkpoint',
      tenantId: rawId(tenant.tenantId),
      sequence: 5,
      hash: lines[4]!.hash,
      previousMac: CHECKPOINT_GENESIS_MAC,
    });
    expect(mac).toMatch(/^[0-9a-f]{64}$/);
    expect(new Date(createdAt).getTime()).toBeGreaterThanOrEqual(new Date(lines[4]!.createdAt).getTime());
    expect(lines[4]).not.toHaveProperty('type');

    const recorded = await waitFor(
      async () =>
        (await tenant.gql(AuditLogs, { first: 1, filter: { actions: ['audit_log.exported'] } })).data!
          .auditLogs.edges[0]?.node,
      { what: 'the export to be recorded' },
    );
    expect(recorded.metadata).toMatchObject({ entries: 6, checkpoints: 1 });
  });
});

describe('audit checkpoints in PostgreSQL', () => {
  let h: TestApp;
  let sql: Sql;
  let orm: Orm;
  let writer: AuditCheckpoints;
  let bus: NatsBus;
  const key = auditCheckpointKey(Buffer.from(inject('secretKey'), 'base64'));
  const every = { checkpointEvery: 5, checkpointIntervalSeconds: 3600 };

  // No worker: checkpoints are written when a test says (writer.writeDue), so each test knows
  // which heads they cover. How the loop times them is the suites' above and below.
  beforeAll(async () => {
    h = await startTestApp('production', { env: everyFive, roles: { api: true, worker: false } });
    sql = await sqlConnection(h.databaseUrl);
    orm = await openOrm(
      loadConfig({ DATABASE_URL: h.databaseUrl, LOG_LEVEL: 'silent' }),
      createLogger('silent'),
    );
    bus = await NatsBus.connect(
      { url: inject('natsUrl'), replicas: 1, duplicateWindowMs: 60_000, name: 'herald-test-checkpoints' },
      createLogger('silent'),
    );
    await bus.declareStreams(Object.values(streams(h.natsPrefix)));
    writer = newWriter();
  });
  afterAll(async () => {
    await h?.stop();
    await sql?.close();
    await orm?.close();
    await bus?.close();
  });

  /** A worker's checkpoint writer, on the app's database and stream prefix. */
  const newWriter = () => new AuditCheckpoints({ orm, key, bus, prefix: h.natsPrefix }, every);

  /** A new tenant (two entries) written up to `upTo` entries, checkpointed at 5, 10… on the way. */
  async function checkpointed(name: string, upTo: number) {
    const tenant = await h.tenant(name);
    for (let head = 2; head < upTo;) {
      const next = Math.min(upTo, (Math.floor(head / 5) + 1) * 5);
      await write(tenant, next - head);
      head = next;
      await writer.writeDue();
    }
    return { tenant, tenantId: rawId(tenant.tenantId) };
  }

  /** What a database owner can do: switch the append-only triggers off for a moment. */
  async function behindHeraldsBack(table: string, work: () => Promise<unknown>) {
    await sql.query(`alter table ${table} disable trigger user`);
    try {
      await work();
    } finally {
      await sql.query(`alter table ${table} enable trigger user`);
    }
  }

  /**
   * A consistent rewrite, as only the database owner can make it: entry `from` changed, every later
   * hash recomputed and the chain head moved along. The hash chain alone no longer shows it.
   */
  async function rewriteFrom(tenantId: string, from: number) {
    const entries = await chain(sql, tenantId);
    let previousHash = entries[from - 2]?.hash ?? GENESIS_HASH;
    await behindHeraldsBack('audit_logs', async () => {
      for (const entry of entries.slice(from - 1)) {
        const metadata = entry.sequence === from ? { changes: {}, rewritten: true } : entry.metadata;
        const hash = auditHash({ ...entry, metadata, previousHash });
        await sql.query(
          'update audit_logs set metadata = ?, previous_hash = ?, hash = ? where tenant_id = ? and sequence = ?',
          [JSON.stringify(metadata), previousHash, hash, tenantId, entry.sequence],
        );
        previousHash = hash;
      }
    });
    await sql.query('update audit_chain_heads set hash = ? where tenant_id = ?', [previousHash, tenantId]);
  }

  it('refuses UPDATE, DELETE and TRUNCATE of checkpoints', async () => {
    const { tenantId } = await checkpointed('Sealed', 5);
    expect(await checkpoints(sql, tenantId)).toHaveLength(1);
    await expect(
      sql.query('update audit_checkpoints set mac = ? where tenant_id = ?', ['0'.repeat(64), tenantId]),
    ).rejects.toThrow(/append-only/);
    await expect(sql.query('delete from audit_checkpoints where tenant_id = ?', [tenantId])).rejects.toThrow(
      /append-only/,
    );
    await expect(sql.query('truncate audit_checkpoints')).rejects.toThrow(/append-only/);
  });

  it('macs each head under the key derived from HERALD_SECRET_KEY, chained to the checkpoint before', async () => {
    const { tenantId } = await checkpointed('Keyed', 12);
    const entries = await chain(sql, tenantId);
    const written = await checkpoints(sql, tenantId);
    expect(written.map((checkpoint) => checkpoint.sequence)).toEqual([5, 10]);
    const [first, second] = written;
    expect(first).toMatchObject({ hash: entries[4]!.hash, previousMac: CHECKPOINT_GENESIS_MAC });
    expect(second).toMatchObject({ hash: entries[9]!.hash, previousMac: first!.mac });
    for (const checkpoint of written) expect(checkpoint.mac).toBe(checkpointMac(key, checkpoint));
  });

  it('catches a chain rewritten with its hashes recomputed, naming the checkpoint', async () => {
    const { tenant, tenantId } = await checkpointed('Rewritten', 12);
    expect(await verify(tenant)).toMatchObject({ ok: true, checked: 12, checkpointsChecked: 2 });

    // Past the newest checkpoint a consistent rewrite is not seen: the next checkpoint would pin it.
    await rewriteFrom(tenantId, 11);
    expect(await verify(tenant)).toMatchObject({ ok: true, checked: 12, checkpointsChecked: 2 });

    await rewriteFrom(tenantId, 7);
    const verification = await verify(tenant);
    expect(verification).toMatchObject({
      ok: false,
      checked: 5,
      firstBrokenSequence: 6,
      checkpointsChecked: 1,
      lastCheckpointSequence: 5,
    });
    expect(verification.reason).toMatch(/^checkpoint at sequence 10 does not match: entry 10 .*rewritten/);
  });

  it('fails a checkpoint made with another key', async () => {
    const { tenant, tenantId } = await checkpointed('Forged', 5);
    await rewriteFrom(tenantId, 2);
    const head = (await chain(sql, tenantId))[4]!;
    const [stored] = await checkpoints(sql, tenantId);
    const resign = (withKey: Buffer) =>
      behindHeraldsBack('audit_checkpoints', () =>
        sql.query('update audit_checkpoints set hash = ?, mac = ? where tenant_id = ? and sequence = 5', [
          head.hash,
          checkpointMac(withKey, { ...stored!, hash: head.hash }),
          tenantId,
        ]),
      );

    await resign(randomBytes(32));
    const verification = await verify(tenant);
    expect(verification).toMatchObject({
      ok: false,
      checked: 0,
      firstBrokenSequence: 1,
      checkpointsChecked: 0,
    });
    expect(verification.reason).toMatch(
      /^checkpoint at sequence 5 does not match: its mac was not made with this key/,
    );

    // The same forgery under Herald's key holds in the database; the copy the bus keeps shows it.
    await resign(key);
    const resigned = await verify(tenant);
    expect(resigned).toMatchObject({ ok: false, checkpointsChecked: 1, anchorSequence: null });
    expect(resigned.reason).toMatch(/^checkpoint at sequence 5, the newest the bus keeps, is not the one/);
  });

  it('detects a checkpoint removed from the middle, and entries removed from the end', async () => {
    const middle = await checkpointed('Middle', 10);
    await behindHeraldsBack('audit_checkpoints', () =>
      sql.query('delete from audit_checkpoints where tenant_id = ? and sequence = 5', [middle.tenantId]),
    );
    const gap = await verify(middle.tenant);
    expect(gap).toMatchObject({ ok: false, firstBrokenSequence: 1, lastCheckpointSequence: null });
    expect(gap.reason).toMatch(/^checkpoint at sequence 10 does not follow the checkpoint before it/);

    const end = await checkpointed('End', 7);
    const third = (await chain(sql, end.tenantId))[2]!;
    await behindHeraldsBack('audit_logs', () =>
      sql.query('delete from audit_logs where tenant_id = ? and sequence > 3', [end.tenantId]),
    );
    await sql.query('update audit_chain_heads set sequence = 3, hash = ? where tenant_id = ?', [
      third.hash,
      end.tenantId,
    ]);
    const cut = await verify(end.tenant);
    expect(cut).toMatchObject({ ok: false, checked: 3, firstBrokenSequence: 4 });
    expect(cut.reason).toMatch(/^checkpoint at sequence 5 is past the chain head \(3\)/);
  });

  it('exports each checkpoint in the range it was written in, also after the range of its entry', async () => {
    const tenant = await h.tenant('Incremental');
    await write(tenant, 3);
    const first = new Date();
    // Written after the first range ends, over an entry inside it.
    await waitFor(() => Date.now() > first.getTime(), { what: 'the clock to move on' });
    await writer.writeDue();
    const earlier = await exported(h, tenant, { to: first });
    expect(earlier.map((line) => line.type ?? line.sequence)).toEqual([1, 2, 3, 4, 5]);
    const later = await exported(h, tenant, { from: first });
    expect(later.filter((line) => line.type === 'checkpoint').map((line) => line.sequence)).toEqual([5]);
    // In sequence order: before the entries the later range holds (the first export's own).
    expect(later[0]).toMatchObject({ type: 'checkpoint', sequence: 5 });
    expect(later.slice(1).every((line) => line.type === undefined && line.sequence > 5)).toBe(true);
  });

  it('signs only heads that are their entry, and chains only to a checkpoint that holds', async () => {
    const forgedHead = await checkpointed('Forged head', 4);
    const heads = () =>
      sql.query<{ sequence: number }>(
        'select sequence::int as sequence from audit_checkpoints where tenant_id = ?',
        [forgedHead.tenantId],
      );
    // A head row moved to a hash no entry has: nothing is signed for it.
    await sql.query(`update audit_chain_heads set sequence = 5, hash = ? where tenant_id = ?`, [
      'f'.repeat(64),
      forgedHead.tenantId,
    ]);
    await writer.writeDue();
    expect(await heads()).toEqual([]);

    // A junk checkpoint far past the head (all Herald's own role can insert): reported as forged,
    // and no checkpoint is chained to it.
    const junk = await checkpointed('Junk', 7);
    await sql.query(
      `insert into audit_checkpoints (tenant_id, sequence, hash, previous_mac, mac, created_at)
       values (?, 1000000, ?, ?, ?, now())`,
      [junk.tenantId, 'a'.repeat(64), (await checkpoints(sql, junk.tenantId))[0]!.mac, 'b'.repeat(64)],
    );
    const verification = await verify(junk.tenant);
    expect(verification.ok).toBe(false);
    expect(verification.reason).toMatch(/^checkpoint at sequence 1000000 is forged/);
  });

  it('catches the newest checkpoints deleted and the chain rewritten after an older one', async () => {
    const { tenant, tenantId } = await checkpointed('Deleted', 10);
    expect(await verify(tenant)).toMatchObject({ ok: true, lastCheckpointSequence: 10, anchorSequence: 10 });
    await behindHeraldsBack('audit_checkpoints', () =>
      sql.query('delete from audit_checkpoints where tenant_id = ? and sequence > 5', [tenantId]),
    );
    await rewriteFrom(tenantId, 7);
    // A worker does not sign the rewritten head: the checkpoint the bus keeps is gone.
    await writer.writeDue();
    expect((await checkpoints(sql, tenantId)).map((c) => c.sequence)).toEqual([5]);
    const verification = await verify(tenant);
    expect(verification).toMatchObject({ ok: false, anchorSequence: null, firstBrokenSequence: 6 });
    expect(verification.reason).toMatch(
      /^checkpoint at sequence 10, the newest the bus keeps, is missing from the database/,
    );
  });

  it('lets one successor of a checkpoint in when workers race to write it', async () => {
    const tenant = await h.tenant('Racing');
    const tenantId = rawId(tenant.tenantId);
    await write(tenant, 3);
    // A session holding EXCLUSIVE on the table lets workers read it but holds back their inserts:
    // two of them read the same newest checkpoint (none yet) over different heads, 5 and 10.
    const lock = new pg.Client({ connectionString: h.databaseUrl });
    await lock.connect();
    const waitingInserts = (count: number) =>
      waitFor(
        async () =>
          (
            await sql.query<{ waiting: number }>(
              `select count(*)::int as waiting from pg_locks
               where relation = 'audit_checkpoints'::regclass and not granted
                 and database = (select oid from pg_database where datname = current_database())`,
            )
          )[0]!.waiting === count,
        { what: `${count} inserts waiting for the lock` },
      );
    try {
      await lock.query('begin');
      await lock.query('lock table audit_checkpoints in exclusive mode');
      const early = newWriter().writeDue();
      await waitingInserts(1);
      await write(tenant, 5);
      const late = newWriter().writeDue();
      await waitingInserts(2);
      await lock.query('commit');
      await Promise.all([early, late]);
    } finally {
      await lock.end();
    }
    // Released together, either insert may get in first; the other is skipped.
    const [winner, ...forks] = await checkpoints(sql, tenantId);
    expect(forks).toEqual([]);
    expect([5, 10]).toContain(winner!.sequence);
    expect(winner!.previousMac).toBe(CHECKPOINT_GENESIS_MAC);

    await write(tenant, 5);
    expect(await writer.writeDue()).toBeGreaterThanOrEqual(1);
    const [, next] = await checkpoints(sql, tenantId);
    expect(next).toMatchObject({ sequence: 15, previousMac: winner!.mac });
    expect(await verify(tenant)).toMatchObject({
      ok: true,
      checked: 15,
      checkpointsChecked: 2,
      lastCheckpointSequence: 15,
    });
  });
});

describe('audit checkpoints every T seconds, under a key of their own', () => {
  let h: TestApp;
  let sql: Sql;
  const dedicated = randomBytes(32);

  beforeAll(async () => {
    h = await startTestApp('production', {
      env: {
        HERALD_AUDIT_CHECKPOINT_EVERY: '1000000',
        HERALD_AUDIT_CHECKPOINT_INTERVAL_SECONDS: '1',
        HERALD_AUDIT_CHECKPOINT_KEY: dedicated.toString('base64'),
      },
    });
    sql = await sqlConnection(h.databaseUrl);
  });
  afterAll(async () => {
    await h?.stop();
    await sql?.close();
  });

  it('covers a quiet chain once its first uncovered entry is T old', async () => {
    const tenant = await h.tenant('Quiet');
    const tenantId = rawId(tenant.tenantId);
    const checkpointAt = (sequence: number) =>
      waitFor(async () => (await checkpoints(sql, tenantId)).find((c) => c.sequence === sequence), {
        what: `a checkpoint at sequence ${sequence}`,
      });
    /** How long after the first entry it covers a checkpoint was made. */
    const waited = async (checkpoint: AuditCheckpoint, firstCovered: number) =>
      checkpoint.createdAt.getTime() - (await chain(sql, tenantId))[firstCovered - 1]!.createdAt.getTime();

    // tenant.created and the first token's entry.
    const first = await checkpointAt(2);
    expect(await waited(first, 1)).toBeGreaterThanOrEqual(1_000);
    expect(first.previousMac).toBe(CHECKPOINT_GENESIS_MAC);
    expect(first.mac).toBe(checkpointMac(dedicated, first));
    const derived = auditCheckpointKey(Buffer.from(inject('secretKey'), 'base64'));
    expect(first.mac).not.toBe(checkpointMac(derived, first));

    await write(tenant, 1);
    const second = await checkpointAt(3);
    expect(await waited(second, 3)).toBeGreaterThanOrEqual(1_000);
    expect(second.previousMac).toBe(first.mac);
    expect(await verify(tenant)).toMatchObject({
      ok: true,
      checkpointsChecked: 2,
      lastCheckpointSequence: 3,
    });
  });
});
