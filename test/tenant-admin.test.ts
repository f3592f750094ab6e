import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { systemActor } from '../src/tenancy/actor.ts';
import { graphql } from './gql/index.ts';
import {
  httpExecutor,
  liveEvents,
  modes,
  newEventType,
  publishOrFail,
  rawId,
  startTestApp,
  webhookTo,
  type TestApp,
} from './support/app.ts';
import { AuditLogs, NodeById, Viewer } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { sqlConnection } from './support/sql.ts';
import { waitFor } from './support/wait.ts';

const Tenants = graphql(`
  query AdminTenants($first: Int, $after: String, $filter: TenantFilter) {
    tenants(first: $first, after: $after, filter: $filter) {
      edges {
        node {
          id
          name
          maxWebhooks
          requestsPerSecond
          suspendedAt
          suspendedReason
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const TenantById = graphql(`
  query AdminTenant($id: ID!) {
    tenant(id: $id) {
      id
      name
      suspendedAt
    }
  }
`);

const UpdateTenant = graphql(`
  mutation AdminUpdateTenant($input: UpdateTenantInput!) {
    updateTenant(input: $input) {
      __typename
      ... on UpdateTenantPayload {
        tenant {
          name
          maxWebhooks
          requestsPerSecond
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const SuspendTenant = graphql(`
  mutation AdminSuspendTenant($input: SuspendTenantInput!) {
    suspendTenant(input: $input) {
      __typename
      ... on SuspendTenantPayload {
        tenant {
          suspendedAt
          suspendedReason
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
    }
  }
`);

const ResumeTenant = graphql(`
  mutation AdminResumeTenant($input: ResumeTenantInput!) {
    resumeTenant(input: $input) {
      __typename
      ... on ResumeTenantPayload {
        tenant {
          suspendedAt
          suspendedReason
        }
      }
    }
  }
`);

const IssueTenantToken = graphql(`
  mutation AdminIssueTenantToken($input: IssueTenantTokenInput!) {
    issueTenantToken(input: $input) {
      __typename
      ... on IssueTenantTokenPayload {
        token
        apiToken {
          id
          scopes
          client
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const Webhooks = graphql(`
  query AdminTenantWebhooks {
    webhooks(first: 1) {
      edges {
        cursor
      }
    }
  }
`);

/** A tenant id no tenant has, as a global id. */
const unknownTenant = Buffer.from('Tenant:01a23800-0000-7000-8000-000000000000').toString('base64');

describe.each(modes)('tenant administration (%s mode)', (mode) => {
  let h: TestApp;

  beforeAll(async () => {
    h = await startTestApp(mode, {
      // A retry a second and a half after the first attempt: time to suspend the tenant first.
      env: { ...toLocalReceivers, HERALD_RETRY_SCHEDULE_MS: '1500,1500,1500' },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const audit = async (gql = h.gql) =>
    (await gql(AuditLogs, { first: 20 })).data!.auditLogs.edges.map((e) => e.node);

  it('lists and reads tenants for the operator only', async () => {
    const other = await h.tenant('Listed');
    const all = (await h.operator(Tenants, { first: 100 })).data!.tenants.edges.map((e) => e.node);
    expect(all.map((t) => t.id)).toEqual(expect.arrayContaining([h.tenantId, other.tenantId]));
    expect((await h.operator(TenantById, { id: other.tenantId })).data!.tenant).toMatchObject({
      id: other.tenantId,
      name: 'Listed',
      suspendedAt: null,
    });
    expect((await h.operator(TenantById, { id: unknownTenant })).data!.tenant).toBeNull();
    expect((await h.operator(NodeById, { id: other.tenantId })).data!.node).toMatchObject({
      __typename: 'Tenant',
    });

    // A tenant sees neither the list nor another tenant, by any way in.
    const listed = await h.gql(Tenants, { first: 10 });
    expect(listed.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await h.gql(TenantById, { id: other.tenantId })).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await h.gql(NodeById, { id: other.tenantId })).data!.node).toBeNull();
    expect((await h.gql(NodeById, { id: h.tenantId })).data!.node).toMatchObject({ id: h.tenantId });
    const update = await h.gql(UpdateTenant, { input: { id: h.tenantId, maxWebhooks: 100_000 } });
    expect(update.errors?.[0]?.extensions?.code ?? update.data?.updateTenant.__typename).toMatch(
      /FORBIDDEN|ForbiddenError/,
    );
  });

  it("changes a tenant's plan as a merge patch, audited in the tenant's chain", async () => {
    const other = await h.tenant('Planned');
    const changed = await h.operator(UpdateTenant, {
      input: { id: other.tenantId, maxWebhooks: 7, requestsPerSecond: 50 },
    });
    expect(changed.data!.updateTenant).toEqual({
      __typename: 'UpdateTenantPayload',
      tenant: { name: 'Planned', maxWebhooks: 7, requestsPerSecond: 50 },
    });
    const cleared = await h.operator(UpdateTenant, {
      input: { id: other.tenantId, requestsPerSecond: null },
    });
    expect(cleared.data!.updateTenant).toMatchObject({ tenant: { maxWebhooks: 7, requestsPerSecond: null } });

    const entries = await audit(other.gql);
    expect(entries.filter((e) => e.action === 'tenant.updated').map((e) => e.metadata)).toEqual([
      { changes: { requestsPerSecond: { before: 50, after: null } } },
      { changes: { maxWebhooks: { before: 100, after: 7 }, requestsPerSecond: { before: null, after: 50 } } },
    ]);
    expect(entries[0]!.executor).toMatchObject({ type: 'operator' });

    // Refused whole: nothing changes, nothing is recorded.
    const refused = await h.operator(UpdateTenant, {
      input: { id: other.tenantId, name: null, maxWebhooks: -1 },
    });
    const problems = refused.data!.updateTenant;
    if (problems.__typename !== 'ValidationError') throw new Error(problems.__typename);
    expect(problems.fields.map((f) => f.path.join('.')).sort()).toEqual(['input.maxWebhooks', 'input.name']);
    const missing = await h.operator(UpdateTenant, { input: { id: unknownTenant, maxWebhooks: 1 } });
    expect(missing.data!.updateTenant.__typename).toBe('NotFoundError');
    expect(await audit(other.gql)).toHaveLength(entries.length);
  });

  it('issues a token for an existing tenant', async () => {
    const other = await h.tenant('Locked out');
    const issued = (
      await h.operator(IssueTenantToken, {
        input: { tenantId: other.tenantId, name: 'Recovery', scopes: ['webhooks:read', 'audit:read'] },
      })
    ).data!.issueTenantToken;
    if (issued.__typename !== 'IssueTenantTokenPayload') throw new Error(JSON.stringify(issued));
    expect(issued.apiToken).toMatchObject({ scopes: ['webhooks:read', 'audit:read'], client: 'DASHBOARD' });
    const gql = httpExecutor(h.url, issued.token);
    expect((await gql(Viewer, {})).data!.viewer.tenant).toMatchObject({ id: other.tenantId });
    expect((await gql(Webhooks, {})).data!.webhooks.edges).toEqual([]);
    const created = (await audit(gql)).find(
      (e) => e.action === 'api_token.created' && e.related?.name === 'Recovery',
    );
    expect(created?.executor).toMatchObject({ type: 'operator' });

    const bad = await h.operator(IssueTenantToken, {
      input: { tenantId: other.tenantId, name: 'Bad', scopes: ['everything'] },
    });
    expect(bad.data!.issueTenantToken).toMatchObject({
      __typename: 'ValidationError',
      fields: [expect.objectContaining({ path: ['input', 'scopes', '0'] })],
    });
    const nobody = await h.operator(IssueTenantToken, {
      input: { tenantId: unknownTenant, name: 'Nobody', scopes: ['webhooks:read'] },
    });
    expect(nobody.data!.issueTenantToken.__typename).toBe('NotFoundError');
    const byTenant = await other.gql(IssueTenantToken, {
      input: { tenantId: other.tenantId, name: 'Self-issued', scopes: ['webhooks:read'] },
    });
    expect(byTenant.errors?.[0]?.extensions?.code ?? byTenant.data?.issueTenantToken.__typename).toMatch(
      /FORBIDDEN|ForbiddenError/,
    );
  });

  it('suspends a tenant: tokens refused, sockets closed, deliveries paused until resumed, none lost', async () => {
    const tenant = await h.tenant('Suspended');
    const type = await newEventType(h.operator, 'Suspension');
    // The first request is held until the tenant is suspended, then fails: its retry comes due
    // while the tenant is suspended, whatever the machine's pace.
    let release = () => {};
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    const receiver = await startReceiver((_request, res) => held.then(() => res.writeHead(500).end()));
    await webhookTo(tenant.gql, receiver.url, [type]);
    // A live subscription of the tenant's, on a type the webhook does not take.
    const sub = await liveEvents(h.ws({ token: tenant.token }), tenant.gql, [
      await newEventType(h.operator, 'Suspension'),
    ]);
    await publishOrFail(tenant.gql, { type, idempotencyKey: `${type}/before` });
    await waitFor(() => receiver.received.length === 1, { what: 'the first attempt' });
    const deliveryId = String(receiver.received[0]!.headers['webhook-id']);
    const delivery = async () =>
      (await h.app.services.deliveries.getMany(systemActor(rawId(tenant.tenantId)), [deliveryId]))[0]!;

    const suspended = await h.operator(SuspendTenant, {
      input: { id: tenant.tenantId, reason: 'unpaid invoices' },
    });
    expect(suspended.data!.suspendTenant).toMatchObject({
      __typename: 'SuspendTenantPayload',
      tenant: { suspendedReason: 'unpaid invoices' },
    });
    // Refused at once in this process, over HTTP and on the open socket.
    const refused = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tenant.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ query: '{ viewer { operator } }' }),
    });
    expect(refused.status).toBe(401);
    await waitFor(() => sub.failure(), { what: 'the socket to close' });
    expect((sub.failure() as { code: number }).code).toBe(4401);
    release();

    // The retry comes due and is paused, not attempted.
    await waitFor(async () => (await delivery()).status === 'PAUSED', {
      what: 'the delivery to pause',
    });
    expect(receiver.received).toHaveLength(1);
    const listed = (await h.operator(Tenants, { first: 100, filter: { suspended: true } })).data!.tenants;
    expect(listed.edges.map((e) => e.node.id)).toContain(tenant.tenantId);
    expect(listed.edges.every((e) => e.node.suspendedAt !== null)).toBe(true);
    const again = await h.operator(SuspendTenant, { input: { id: tenant.tenantId, reason: 'twice' } });
    expect(again.data!.suspendTenant).toMatchObject({ tenant: { suspendedReason: 'unpaid invoices' } });
    // The operator's own chain records it too.
    const platform = (await audit(h.operator)).filter((e) => e.relationId === rawId(tenant.tenantId));
    expect(platform.map((e) => e.action)).toContain('tenant.suspended');

    receiver.reply((_request, res) => res.writeHead(200).end());

    const resumed = await h.operator(ResumeTenant, { input: { id: tenant.tenantId } });
    expect(resumed.data!.resumeTenant).toMatchObject({
      tenant: { suspendedAt: null, suspendedReason: null },
    });
    await waitFor(async () => (await delivery()).status === 'SUCCEEDED', {
      timeoutMs: 20_000,
      what: 'the paused delivery to go out',
    });
    expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual([deliveryId, deliveryId]);
    expect((await delivery()).attempts).toBe(2);
    expect((await tenant.gql(Viewer, {})).data!.viewer.tenant).toMatchObject({ id: tenant.tenantId });
    const actions = (await audit(tenant.gql)).map((e) => e.action);
    expect(actions.filter((a) => a === 'tenant.suspended' || a === 'tenant.resumed')).toEqual([
      'tenant.resumed',
      'tenant.suspended',
    ]);
    await sub.stop();
    await receiver.close();
  });

  it.runIf(mode === 'production')('ends an audit export under way when its tenant is suspended', async () => {
    const tenant = await h.tenant('Exporting');
    const tenantId = rawId(tenant.tenantId);
    // A trail of 20,000 entries, about 10 MB of NDJSON: far more than socket buffers hold, so an
    // export whose reader waits stays under way.
    const sql = await sqlConnection(h.databaseUrl);
    try {
      await sql.query(
        `insert into audit_logs (id, tenant_id, sequence, action, executor, metadata, created_at, previous_hash, hash)
         select gen_random_uuid(), ?, h.sequence + n, 'bulk.entry', '{"type":"system","id":null,"name":"test"}',
           jsonb_build_object('padding', repeat('x', 400)), now(), repeat('0', 64), repeat('0', 64)
         from audit_chain_heads h, generate_series(1, 20000) n where h.tenant_id = ?`,
        [tenantId, tenantId],
      );
      await sql.query('update audit_chain_heads set sequence = sequence + 20000 where tenant_id = ?', [
        tenantId,
      ]);
    } finally {
      await sql.close();
    }
    const response = await fetch(`${h.url}/audit/export`, {
      headers: { authorization: `Bearer ${tenant.token}` },
    });
    const reader = response.body!.getReader();
    expect((await reader.read()).done).toBe(false);

    await h.operator(SuspendTenant, { input: { id: tenant.tenantId, reason: 'leaving' } });
    let received = 0;
    const ended = await (async () => {
      try {
        for (;;) {
          const chunk = await reader.read();
          if (chunk.done) return 'complete';
          received += chunk.value.length;
        }
      } catch {
        return 'cut off';
      }
    })();
    expect(ended).toBe('cut off');
    expect(received).toBeLessThan(8_000_000);

    await h.operator(ResumeTenant, { input: { id: tenant.tenantId } });
    const actions = await waitFor(
      async () => {
        const found = (await audit(tenant.gql)).map((e) => e.action);
        return found.includes('audit_log.export_failed') && found;
      },
      { what: 'the export recorded as failed' },
    );
    expect(actions).not.toContain('audit_log.exported');
  });

  // Each run of the command is a process booting Herald's modules: about 25 s in all on this machine.
  it.runIf(mode === 'production')(
    'administers tenants from the command line',
    async () => {
      const cli = async (...args: string[]) => {
        const { stdout } = await promisify(execFile)(
          process.execPath,
          ['src/main/cli.ts', 'tenants', ...args],
          {
            env: {
              ...process.env,
              DATABASE_URL: h.databaseUrl,
              NATS_URL: inject('natsUrl'),
              HERALD_NATS_PREFIX: h.natsPrefix,
              HERALD_SECRET_KEY: inject('secretKey'),
              HERALD_ADMIN_TOKEN: h.operatorToken,
            },
          },
        );
        return stdout;
      };
      const created = JSON.parse(await cli('create', 'From the shell', '--max-webhooks', '3')) as {
        tenantId: string;
        token: string;
      };
      const id = created.tenantId;
      expect(JSON.parse(await cli('get', id))).toMatchObject({ id, name: 'From the shell', maxWebhooks: 3 });
      expect(JSON.parse(await cli('suspend', id, '--reason', 'abuse'))).toMatchObject({
        suspendedReason: 'abuse',
      });
      const suspended = (await cli('list', '--suspended'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { id: string });
      expect(suspended.map((t) => t.id)).toContain(id);
      expect(JSON.parse(await cli('resume', id))).toMatchObject({ suspendedAt: null });
      const issued = JSON.parse(await cli('token', id, '--scopes', 'webhooks:read', '--name', 'Shell')) as {
        token: string;
        scopes: string[];
      };
      expect(issued.scopes).toEqual(['webhooks:read']);
      expect((await httpExecutor(h.url, issued.token)(Webhooks, {})).data!.webhooks.edges).toEqual([]);
      const noReason = await cli('suspend', id).catch(
        (error: unknown) => error as { code: number; stderr: string },
      );
      expect(noReason).toMatchObject({ code: 2 });
      expect((noReason as { stderr: string }).stderr).toContain('reason');
      await expect(cli('get', 'not-an-id')).rejects.toMatchObject({ code: 2 });
      // Refused before anything runs.
      await expect(cli('create', 'Odd', '--max-webhooks', '1e3')).rejects.toMatchObject({ code: 2 });
      await expect(cli('list', '--suspended', '--active')).rejects.toMatchObject({ code: 2 });
      await expect(cli('resume', id, '--reason', 'no such option here')).rejects.toMatchObject({ code: 2 });
    },
    120_000,
  );
});
