import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { modes, rawId, startTestApp, uniqueType, type TestApp } from './support/app.ts';
import {
  AuditLogs,
  CreateApiToken,
  RevokeApiToken,
  UpsertEventType,
  VerifyAuditTrail,
} from './support/operations.ts';
import type { AuditLogFilter, AuditLogsQuery } from './gql/graphql.ts';
import { sqlConnection } from './support/sql.ts';
import { waitFor } from './support/wait.ts';

type Entry = { action: string; sequence: number; tenantId: string; metadata: unknown };

describe.each(modes)('audit log (%s mode)', (mode) => {
  let h: TestApp;

  beforeAll(async () => {
    h = await startTestApp(mode);
  });
  afterAll(async () => {
    await h?.stop();
  });

  const entries = async (filter: AuditLogFilter = {}, as = h.gql) =>
    (await as(AuditLogs, { first: 100, filter })).data!.auditLogs.edges.map((e) => e.node);

  it('records who changed what, from where, with secrets left out', async () => {
    const created = (
      await h.gql(
        CreateApiToken,
        { input: { name: 'Reporting', scopes: ['audit:read'] } },
        { headers: { 'user-agent': 'herald-test/1.0', 'x-request-id': 'req-audit-1' } },
      )
    ).data!.createApiToken;
    if (created.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');

    const [entry] = await entries({
      actions: ['api_token.created'],
      relationName: 'ApiToken',
      relationId: rawId(created.apiToken.id),
    });
    expect(entry).toMatchObject({
      action: 'api_token.created',
      executor: { type: 'token', name: 'Initial token' },
      related: { type: 'ApiToken', id: rawId(created.apiToken.id), name: 'Reporting' },
      relationName: 'ApiToken',
      userAgent: 'herald-test/1.0',
      requestId: 'req-audit-1',
      metadata: {
        changes: {
          name: { before: null, after: 'Reporting' },
          scopes: { before: null, after: ['audit:read'] },
          client: { before: null, after: 'DASHBOARD' },
        },
      },
    });
    expect(entry!.ip).toMatch(/127\.0\.0\.1|::1/);
    expect(JSON.stringify(entry)).not.toContain(created.token);

    await h.gql(RevokeApiToken, { input: { id: created.apiToken.id } });
    const [revoked] = await entries({
      actions: ['api_token.revoked'],
      relationName: 'ApiToken',
      relationId: rawId(created.apiToken.id),
    });
    const changes = (revoked!.metadata as { changes: Record<string, { before: unknown; after: unknown }> })
      .changes;
    expect(Object.keys(changes)).toEqual(['revokedAt']);
    expect(changes.revokedAt!.before).toBeNull();

    const type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'Audited' } });
    const [catalog] = await entries(
      { actions: ['event_type.created'], relationName: 'EventType', relationId: type },
      h.operator,
    );
    expect(catalog).toMatchObject({ executor: { type: 'operator', id: null, name: 'operator' } });
  });

  it('filters by actions, executor, relation and time, and pages without gaps or repeats', async () => {
    const before = new Date();
    const names = ['p1', 'p2', 'p3', 'p4', 'p5'];
    for (const name of names) await h.gql(CreateApiToken, { input: { name, scopes: ['audit:read'] } });
    const recent = await entries({ from: before.toISOString() });
    expect(recent.map((e) => e.related?.name)).toEqual([...names].reverse());
    expect(await entries({ from: before.toISOString(), actions: ['api_token.revoked'] })).toEqual([]);
    expect((await entries({ actions: ['api_token.created', 'api_token.revoked'] })).length).toBeGreaterThan(
      5,
    );
    const executorId = recent[0]!.executor.id!;
    expect((await entries({ executorId, from: before.toISOString() })).length).toBe(5);
    expect(await entries({ to: before.toISOString(), from: before.toISOString() })).toEqual([]);

    const seen: string[] = [];
    let after: string | null = null;
    do {
      const page: AuditLogsQuery['auditLogs'] = (
        await h.gql(AuditLogs, { first: 2, after, filter: { from: before.toISOString() } })
      ).data!.auditLogs;
      seen.push(...page.edges.map((e) => e.node.related!.name!));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor! : null;
    } while (after);
    expect(seen).toEqual([...names].reverse());

    const orphan = await h.gql(AuditLogs, { filter: { relationId: 'x' } });
    expect(orphan.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const badCursor = await h.gql(AuditLogs, { after: 'bm90IGEgY3Vyc29y' });
    expect(badCursor.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const tooMany = await h.gql(AuditLogs, { first: 101 });
    expect(tooMany.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('keeps one unbroken chain under 50 concurrent writers', async () => {
    const tenant = await h.tenant('Concurrent');
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        tenant.gql(CreateApiToken, { input: { name: `c${i}`, scopes: ['audit:read'] } }),
      ),
    );
    expect(results.every((r) => r.data?.createApiToken.__typename === 'CreateApiTokenPayload')).toBe(true);
    const verification = (await tenant.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail;
    // tenant.created and the first token's entry, then 50.
    expect(verification).toEqual({ ok: true, checked: 52, firstBrokenSequence: null, reason: null });
    const sequences = (await entries({}, tenant.gql)).map((e) => e.sequence).sort((a, b) => a - b);
    expect(sequences).toEqual(Array.from({ length: 52 }, (_, i) => i + 1));

    // Verifying while others write sees a consistent chain up to the head it read.
    const mixed = await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        i % 3 === 0
          ? tenant.gql(VerifyAuditTrail, {}).then((r) => r.data!.verifyAuditTrail.ok)
          : tenant.gql(CreateApiToken, { input: { name: `m${i}`, scopes: ['audit:read'] } }).then(() => true),
      ),
    );
    expect(mixed.every(Boolean)).toBe(true);
  });

  it('exports NDJSON for a time range, to audit:read only, and records the export', async () => {
    const denied = await fetch(`${h.url}/audit/export`);
    expect(denied.status).toBe(401);
    const reader = (await h.gql(CreateApiToken, { input: { name: 'no audit', scopes: ['events:read'] } }))
      .data!.createApiToken;
    if (reader.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    const forbidden = await fetch(`${h.url}/audit/export`, {
      headers: { authorization: `Bearer ${reader.token}` },
    });
    expect(forbidden.status).toBe(403);
    const badRange = await fetch(`${h.url}/audit/export?from=yesterday`, {
      headers: { authorization: `Bearer ${h.token}` },
    });
    expect(badRange.status).toBe(400);
    // A time PostgreSQL cannot store is refused before anything is read or recorded.
    const before = (await h.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail.checked;
    const yearZero = await fetch(`${h.url}/audit/export?from=0000-01-01T00:00:00Z`, {
      headers: { authorization: `Bearer ${h.token}` },
    });
    expect(yearZero.status).toBe(400);
    expect((await h.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail.checked).toBe(before);

    const from = new Date();
    await h.gql(CreateApiToken, { input: { name: 'exported', scopes: ['audit:read'] } });
    const response = await fetch(`${h.url}/audit/export?from=${from.toISOString()}`, {
      headers: { authorization: `Bearer ${h.token}` },
    });
    expect(response.headers.get('content-type')).toBe('application/x-ndjson');
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Entry);
    expect(lines.map((l) => l.action)).toEqual(['api_token.created', 'audit_log.export_started']);
    // Recorded once it was over, with what it sent.
    const recorded = await waitFor(
      async () => {
        const [last] = (await h.gql(AuditLogs, { first: 1 })).data!.auditLogs.edges.map((e) => e.node);
        return last?.action === 'audit_log.exported' && last;
      },
      { what: 'the export to be recorded' },
    );
    expect(recorded.sequence).toBe(lines[1]!.sequence + 1);
    expect(recorded.metadata).toMatchObject({ entries: 2, to: null });

    const all = (
      await (await fetch(`${h.url}/audit/export`, { headers: { authorization: `Bearer ${h.token}` } })).text()
    )
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Entry);
    expect(all.map((l) => l.sequence)).toEqual(all.map((_, i) => i + 1));
  });
});

describe('audit log in PostgreSQL', () => {
  let h: TestApp;
  let sql: Awaited<ReturnType<typeof sqlConnection>>;

  beforeAll(async () => {
    h = await startTestApp('production');
    sql = await sqlConnection(h.databaseUrl);
  });
  afterAll(async () => {
    await h?.stop();
    await sql?.close();
  });

  it('refuses UPDATE, DELETE and TRUNCATE', async () => {
    const tenantId = rawId(h.tenantId);
    await expect(
      sql.query('update audit_logs set action = ? where tenant_id = ?', ['x', tenantId]),
    ).rejects.toThrow(/append-only/);
    await expect(sql.query('delete from audit_logs where tenant_id = ?', [tenantId])).rejects.toThrow(
      /append-only/,
    );
    await expect(sql.query('truncate audit_logs')).rejects.toThrow(/append-only/);
  });

  it('reports the first altered or missing entry by its sequence', async () => {
    const tenant = await h.tenant('Tampered');
    for (let i = 0; i < 4; i++)
      await tenant.gql(CreateApiToken, { input: { name: `t${i}`, scopes: ['audit:read'] } });
    expect((await tenant.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail).toMatchObject({
      ok: true,
      checked: 6,
    });

    const tenantId = rawId(tenant.tenantId);
    const behindHeraldsBack = async (statement: string) => {
      await sql.query('alter table audit_logs disable trigger user');
      try {
        await sql.query(statement, [tenantId]);
      } finally {
        await sql.query('alter table audit_logs enable trigger user');
      }
    };
    await behindHeraldsBack(
      `update audit_logs set metadata = '{"changes":{}}' where tenant_id = ? and sequence = 4`,
    );
    const altered = (await tenant.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail;
    expect(altered).toMatchObject({ ok: false, checked: 3, firstBrokenSequence: 4 });
    expect(altered.reason).toMatch(/altered/);
    await behindHeraldsBack('delete from audit_logs where tenant_id = ? and sequence = 3');
    const missing = (await tenant.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail;
    expect(missing).toMatchObject({ ok: false, firstBrokenSequence: 3 });
    expect(missing.reason).toMatch(/missing/);
  });

  it('publishes entries to the bus after commit, in sequence', async () => {
    const tenant = await h.tenant('Streamed');
    const nc = await connect({ servers: inject('natsUrl') });
    const received: Entry[] = [];
    const sub = nc.subscribe(`${h.natsPrefix}.audit.${rawId(tenant.tenantId)}`, {
      callback: (_error, msg) => void received.push(msg.json<Entry>()),
    });
    await nc.flush();
    for (const name of ['s1', 's2'])
      await tenant.gql(CreateApiToken, { input: { name, scopes: ['audit:read'] } });
    await waitFor(() => received.length >= 2, { what: 'two audit entries on the bus' });
    sub.unsubscribe();
    await nc.close();
    expect(received.map((e) => [e.action, e.sequence])).toEqual([
      ['api_token.created', 3],
      ['api_token.created', 4],
    ]);
  });
});
