import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { TOKEN_CACHE_TTL_MS } from '../src/tenancy/auth.service.ts';
import { printedSchema } from '../src/graphql/print-schema.ts';
import { createLogger } from '../src/logger.ts';
import { collect, httpExecutor, modes, startTestApp, uniqueType, type TestApp } from './support/app.ts';
import {
  ApiTokens,
  AuditLogs,
  CreateApiToken,
  EventPublished,
  NodeById,
  PublishEvent,
  RevokeApiToken,
  UpsertEventType,
  Viewer,
} from './support/operations.ts';
import type { CreateApiTokenInput } from './gql/graphql.ts';
import { sqlConnection } from './support/sql.ts';
import { waitFor } from './support/wait.ts';

describe.each(modes)('tenants and API tokens (%s mode)', (mode) => {
  let h: TestApp;

  beforeAll(async () => {
    h = await startTestApp(mode);
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function issue(input: CreateApiTokenInput, as = h.gql) {
    const result = (await as(CreateApiToken, { input })).data?.createApiToken;
    if (result?.__typename !== 'CreateApiTokenPayload')
      throw new Error(`createApiToken: ${JSON.stringify(result)}`);
    return { ...result, gql: httpExecutor(h.url, result.token) };
  }

  const auditCount = async () => (await h.gql(AuditLogs, { first: 100 })).data!.auditLogs.edges.length;
  const tokenCount = async () => (await h.gql(ApiTokens, { first: 100 })).data!.apiTokens.edges.length;

  it('tells the viewer who it is', async () => {
    const viewer = (await h.gql(Viewer, {})).data!.viewer;
    expect(viewer).toMatchObject({
      operator: false,
      client: 'DASHBOARD',
      tenant: { id: h.tenantId, name: 'Acme' },
    });
    expect(viewer.scopes).toHaveLength(11);
    expect(h.token.startsWith(viewer.token!.prefix)).toBe(true);

    const operator = (await h.operator(Viewer, {})).data!.viewer;
    expect(operator).toMatchObject({ operator: true, tenant: null, token: null, scopes: [] });
  });

  it('shows a token once and keeps only its hash', async () => {
    const created = await issue({ name: 'CI', scopes: ['events:publish'] });
    expect(created.token).toMatch(/^hrld_[\w-]{43}$/);
    expect(created.apiToken).toMatchObject({ name: 'CI', scopes: ['events:publish'], client: 'DASHBOARD' });
    const apiTokenType = /type ApiToken implements Node \{[^}]*\}/.exec(printedSchema())![0];
    const fields = [...apiTokenType.matchAll(/^ {2}(\w+)[:(]/gm)].map((m) => m[1]);
    expect(fields).toContain('prefix');
    expect(fields.filter((f) => /token|hash|secret/i.test(f!))).toEqual([]);
    expect((await created.gql(Viewer, {})).data!.viewer.token!.name).toBe('CI');

    if (mode === 'production') {
      const sql = await sqlConnection(h.databaseUrl);
      const rows = await sql.query<Record<string, unknown>>('select * from api_tokens where prefix = ?', [
        created.token.slice(0, 12),
      ]);
      await sql.close();
      expect(rows).toHaveLength(1);
      expect(rows[0]!.token_hash).toBe(createHash('sha256').update(created.token).digest('hex'));
      expect(JSON.stringify(rows)).not.toContain(created.token);
    }
  });

  it('lets a token grant only scopes it holds, and refuses bad input writing nothing', async () => {
    const limited = await issue({ name: 'limited', scopes: ['events:publish', 'tokens:manage'] });
    const [tokensBefore, auditBefore] = [await tokenCount(), await auditCount()];

    const escalate = (
      await limited.gql(CreateApiToken, { input: { name: 'x', scopes: ['webhooks:manage'] } })
    ).data;
    expect(escalate?.createApiToken).toMatchObject({ __typename: 'ForbiddenError' });
    expect(
      escalate?.createApiToken.__typename === 'ForbiddenError' && escalate.createApiToken.message,
    ).toMatch(/webhooks:manage/);

    const unknown = (
      await h.gql(CreateApiToken, { input: { name: 'x', scopes: ['events:publish', 'root'] } })
    ).data;
    expect(unknown?.createApiToken).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'scopes', '1'], message: 'unknown scope "root"' }],
    });
    const control = (
      await h.gql(CreateApiToken, { input: { name: 'nul\u0000byte', scopes: ['audit:read'] } })
    ).data;
    expect(control?.createApiToken).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'name'] }],
    });
    const long = (await h.gql(CreateApiToken, { input: { name: 'n'.repeat(256), scopes: ['audit:read'] } }))
      .data;
    expect(long?.createApiToken).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'name'] }],
    });
    const past = (
      await h.gql(CreateApiToken, {
        input: { name: 'old', scopes: ['audit:read'], expiresAt: '2020-01-01T00:00:00Z' },
      })
    ).data;
    expect(past?.createApiToken).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'expiresAt'] }],
    });
    const malformed = await h.gql(RevokeApiToken, { input: { id: 'not-an-id' } });
    expect(malformed.errors?.[0]?.message).toBeTruthy();

    expect([await tokenCount(), await auditCount()]).toEqual([tokensBefore + 0, auditBefore]);
  });

  it('keeps integration tokens to their own client kind', async () => {
    const zapier = await issue({
      name: 'Zapier',
      scopes: ['tokens:manage', 'webhooks:manage'],
      client: 'ZAPIER',
    });
    const dashboard = await zapier.gql(CreateApiToken, {
      input: { name: 'sneaky', scopes: ['webhooks:manage'], client: 'DASHBOARD' },
    });
    expect(dashboard.data?.createApiToken).toMatchObject({ __typename: 'ForbiddenError' });
    const own = await zapier.gql(CreateApiToken, { input: { name: 'zap 2', scopes: ['webhooks:manage'] } });
    expect(own.data?.createApiToken).toMatchObject({ apiToken: { client: 'ZAPIER' } });
  });

  it('looks up every kind of node by id only with the scope its own query needs', async () => {
    const type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'Nodes' } });
    const published = (await h.gql(PublishEvent, { input: { type } })).data!.publishEvent;
    if (published.__typename !== 'PublishEventPayload') throw new Error(published.__typename);
    const id = published.event.id;
    const publisher = await issue({ name: 'publisher', scopes: ['events:publish', 'webhooks:read'] });
    expect((await publisher.gql(NodeById, { id })).data?.node).toBeNull();
    const reader = await issue({ name: 'event reader', scopes: ['events:read'] });
    expect((await reader.gql(NodeById, { id })).data?.node).toMatchObject({ __typename: 'Event', id });
  });

  it('answers a missing scope with FORBIDDEN, saying what the field needs', async () => {
    const type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'Scopes' } });
    const reader = await issue({ name: 'reader', scopes: ['events:read'] });
    const denied = await reader.gql(PublishEvent, { input: { type } });
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(denied.errors?.[0]?.message).toMatch(/: needs the scope events:publish to publish events$/);
    expect(denied.data).toBeNull();
    const tokens = await reader.gql(ApiTokens, {});
    expect(tokens.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(tokens.errors?.[0]?.message).toMatch(/needs the scope tokens:manage to manage API tokens$/);
    expect((await h.operator(PublishEvent, { input: { type } })).errors?.[0]?.extensions?.code).toBe(
      'FORBIDDEN',
    );
  });

  it('stops a revoked token at once, over HTTP and WebSocket, open sockets included', async () => {
    const doomed = await issue({ name: 'doomed', scopes: ['events:read'] });
    expect((await doomed.gql(Viewer, {})).status).toBe(200);
    const open = collect(h.ws({ token: doomed.token }), EventPublished, { types: null });
    const openTwo = collect(h.ws({ token: doomed.token }), EventPublished, { types: null });
    const bystander = collect(h.ws(), EventPublished, { types: null });

    const revoked = (await h.gql(RevokeApiToken, { input: { id: doomed.apiToken.id } })).data?.revokeApiToken;
    expect(revoked).toMatchObject({
      __typename: 'RevokeApiTokenPayload',
      apiToken: { id: doomed.apiToken.id },
    });
    expect((await doomed.gql(Viewer, {})).status).toBe(401);
    await waitFor(() => open.failure() && openTwo.failure(), { what: 'the open sockets to close' });
    expect([open, openTwo].map((s) => (s.failure() as { code: number }).code)).toEqual([4401, 4401]);
    expect(bystander.failure()).toBeUndefined();
    await bystander.stop();
    const socket = collect(h.ws({ token: doomed.token }), EventPublished, { types: null });
    await waitFor(() => socket.failure(), { what: 'the socket to be refused' });
    expect((socket.failure() as { code: number }).code).toBe(4401);

    const again = (await h.gql(RevokeApiToken, { input: { id: doomed.apiToken.id } })).data?.revokeApiToken;
    expect(again).toMatchObject({ __typename: 'RevokeApiTokenPayload' });
  });

  it('stops an expired token, and closes its open sockets', async () => {
    const expiresAt = new Date(Date.now() + 3_000).toISOString();
    const brief = await issue({ name: 'brief', scopes: ['events:read', 'tokens:manage'], expiresAt });
    expect((await brief.gql(Viewer, {})).status).toBe(200);
    const open = collect(h.ws({ token: brief.token }), EventPublished, { types: null });

    const forever = await brief.gql(CreateApiToken, { input: { name: 'outlives', scopes: ['events:read'] } });
    expect(forever.data?.createApiToken).toMatchObject({ __typename: 'ForbiddenError' });
    const shorter = await brief.gql(CreateApiToken, {
      input: { name: 'ok', scopes: ['events:read'], expiresAt },
    });
    expect(shorter.data?.createApiToken).toMatchObject({ __typename: 'CreateApiTokenPayload' });

    await waitFor(async () => (await brief.gql(Viewer, {})).status === 401, { what: 'the token to expire' });
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expiresAt));
    await waitFor(() => open.failure(), { what: 'the open socket to close' });
    expect((open.failure() as { code: number }).code).toBe(4401);
  });

  it('keeps integrations from revoking other kinds of tokens', async () => {
    const zapier = await issue({ name: 'Zapier admin', scopes: ['tokens:manage'], client: 'ZAPIER' });
    const dashboard = await issue({ name: 'Dashboard reader', scopes: ['events:read'] });
    const attempt = await zapier.gql(RevokeApiToken, { input: { id: dashboard.apiToken.id } });
    expect(attempt.data?.revokeApiToken).toMatchObject({ __typename: 'ForbiddenError' });
    expect((await dashboard.gql(Viewer, {})).status).toBe(200);
  });
});

/** Two API processes on one database: each caches the tokens it has seen. */
describe('a token revoked in another API process', () => {
  let first: TestApp;
  let second: App;

  beforeAll(async () => {
    first = await startTestApp('production', { roles: { api: true, worker: false } });
    const config = loadConfig({
      PORT: '0',
      DATABASE_URL: first.databaseUrl,
      NATS_URL: inject('natsUrl'),
      HERALD_NATS_PREFIX: first.natsPrefix,
      HERALD_SECRET_KEY: inject('secretKey'),
      HERALD_ADMIN_TOKEN: first.operatorToken,
      LOG_LEVEL: 'silent',
    });
    second = await startApp(config, { api: true, worker: false }, createLogger('silent'));
  });
  afterAll(async () => {
    await second?.stop();
    await first?.stop();
  });

  it('is refused there once its cached copy expires', async () => {
    const issued = (
      await first.gql(CreateApiToken, { input: { name: 'elsewhere', scopes: ['events:read'] } })
    ).data?.createApiToken;
    if (issued?.__typename !== 'CreateApiTokenPayload') throw new Error(JSON.stringify(issued));
    const elsewhere = httpExecutor(second.url!, issued.token);
    // Now cached by the second process.
    expect((await elsewhere(Viewer, {})).status).toBe(200);

    await first.gql(RevokeApiToken, { input: { id: issued.apiToken.id } });
    expect((await httpExecutor(first.url, issued.token)(Viewer, {})).status).toBe(401);
    await waitFor(async () => (await elsewhere(Viewer, {})).status === 401, {
      what: 'the other process to refuse the token',
      timeoutMs: TOKEN_CACHE_TTL_MS + 2_000,
    });
  });
});
