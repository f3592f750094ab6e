import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import type { CreateWebhookInput, WebhookFilter } from './gql/graphql.ts';
import { httpExecutor, modes, rawId, startTestApp, type Gql, type TestApp } from './support/app.ts';
import {
  AuditLogs,
  CreateApiToken,
  CreateTenant,
  CreateWebhook,
  NodeById,
  UpsertEventType,
} from './support/operations.ts';
import { sqlConnection } from './support/sql.ts';
import { loopbackAllowed } from './support/receiver.ts';

const UpdateWebhook = graphql(`
  mutation UpdateWebhook($input: UpdateWebhookInput!) {
    updateWebhook(input: $input) {
      __typename
      ... on WebhookPayload {
        webhook {
          ...WebhookFields
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on ForbiddenError {
        message
      }
      ... on ConflictError {
        message
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const DeleteWebhook = graphql(`
  mutation DeleteWebhook($input: DeleteWebhookInput!) {
    deleteWebhook(input: $input) {
      __typename
    }
  }
`);

const DisableWebhook = graphql(`
  mutation DisableWebhook($input: DisableWebhookInput!) {
    disableWebhook(input: $input) {
      __typename
      ... on WebhookPayload {
        webhook {
          isActive
          disabledAt
          disabledReason
        }
      }
    }
  }
`);

const EnableWebhook = graphql(`
  mutation EnableWebhook($input: WebhookIdInput!) {
    enableWebhook(input: $input) {
      __typename
      ... on WebhookPayload {
        webhook {
          isActive
          disabledAt
          disabledReason
        }
      }
    }
  }
`);

const RotateSecret = graphql(`
  mutation RotateSecret($input: RotateWebhookSecretInput!) {
    rotateWebhookSecret(input: $input) {
      __typename
      ... on RotateWebhookSecretPayload {
        secret
      }
    }
  }
`);

const Webhooks = graphql(`
  query Webhooks($first: Int, $after: String, $filter: WebhookFilter) {
    webhooks(first: $first, after: $after, filter: $filter) {
      edges {
        node {
          id
          name
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const WebhookById = graphql(`
  query WebhookById($id: ID!) {
    webhook(id: $id) {
      ...WebhookFields
    }
  }
`);

describe.each(modes)('webhook subscriptions (%s mode)', (mode) => {
  let h: TestApp;
  let types: { paid: string; sent: string; lead: string; old: string };

  beforeAll(async () => {
    h = await startTestApp(mode, { env: loopbackAllowed });
    const prefix = `w${Math.random().toString(36).slice(2, 8)}`;
    types = {
      paid: `${prefix}.invoice.paid`,
      sent: `${prefix}.invoice.sent`,
      lead: `${prefix}.lead.created`,
      old: `${prefix}.lead.archived`,
    };
    for (const name of Object.values(types))
      await h.operator(UpsertEventType, { input: { name, group: 'Test' } });
    await h.operator(UpsertEventType, { input: { name: types.old, group: 'Test', deprecated: true } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const create = async (input: Partial<CreateWebhookInput>, as: Gql = h.gql) =>
    (
      await as(CreateWebhook, {
        input: { url: 'https://93.184.216.34/hook', subscribedEvents: [types.paid], ...input },
      })
    ).data!.createWebhook;
  const created = async (input: Partial<CreateWebhookInput> = {}, as: Gql = h.gql) => {
    const result = await create(input, as);
    if (result.__typename !== 'CreateWebhookPayload')
      throw new Error(`createWebhook: ${JSON.stringify(result)}`);
    return result;
  };
  const update = async (input: object, as: Gql = h.gql) =>
    (await as(UpdateWebhook, { input: input as never })).data!.updateWebhook;
  async function token(client: 'ZAPIER' | 'MAKE' | 'API') {
    const issued = (
      await h.gql(CreateApiToken, {
        input: { name: client, scopes: ['webhooks:manage', 'webhooks:read'], client },
      })
    ).data!.createApiToken;
    if (issued.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    return httpExecutor(h.url, issued.token);
  }

  it('returns the secret once, at creation, and keeps it encrypted', async () => {
    const result = await created({ name: 'Billing' });
    expect(result.created).toBe(true);
    expect(result.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(result.secret!.slice(6), 'base64')).toHaveLength(32);
    expect(result.webhook).toMatchObject({ name: 'Billing', isActive: true, managedBy: 'DASHBOARD' });
    const read = (await h.gql(WebhookById, { id: result.webhook.id })).data!.webhook;
    expect(JSON.stringify(read)).not.toContain(result.secret!.slice(6));

    const rotated = (await h.gql(RotateSecret, { input: { id: result.webhook.id } })).data!
      .rotateWebhookSecret;
    expect(rotated.__typename === 'RotateWebhookSecretPayload' && rotated.secret).toMatch(/^whsec_/);
    expect(rotated.__typename === 'RotateWebhookSecretPayload' && rotated.secret).not.toBe(result.secret);
    const audit = (
      await h.gql(AuditLogs, { filter: { relationName: 'Webhook', relationId: rawId(result.webhook.id) } })
    ).data!.auditLogs.edges.map((e) => e.node);
    expect(audit.map((e) => e.action)).toEqual(['webhook.secret_rotated', 'webhook.created']);
    expect(audit[0]!.metadata).toMatchObject({
      changes: { secret: { before: '[redacted]', after: '[redacted]' } },
    });
    expect(JSON.stringify(audit)).not.toContain('whsec_');

    if (mode === 'production') {
      const sql = await sqlConnection(h.databaseUrl);
      const [row] = await sql.query<{ secret: string; previous_secret: string }>(
        'select secret, previous_secret from webhooks where id = ?',
        [rawId(result.webhook.id)],
      );
      await sql.close();
      expect(row!.secret).toMatch(/^v1\./);
      expect(row!.previous_secret).toMatch(/^v1\./);
      expect(JSON.stringify(row)).not.toContain('whsec_');
    }
  });

  it('is idempotent on externalId per client, also when identical requests race', async () => {
    const zapier = await token('ZAPIER');
    const first = await created({ externalId: 'zap-1', name: 'Zap' }, zapier);
    expect(first.webhook.managedBy).toBe('ZAPIER');
    const replay = await created({ externalId: 'zap-1', name: 'Zap, replayed' }, zapier);
    expect(replay).toMatchObject({
      created: false,
      secret: null,
      webhook: { id: first.webhook.id, name: 'Zap' },
    });
    const otherClient = await created({ externalId: 'zap-1' }, await token('MAKE'));
    expect(otherClient.created).toBe(true);

    const racers = await Promise.all(
      Array.from({ length: 6 }, () => created({ externalId: 'race-1' }, zapier)),
    );
    expect(racers.filter((r) => r.created)).toHaveLength(1);
    expect(new Set(racers.map((r) => r.webhook.id)).size).toBe(1);
    expect(racers.filter((r) => r.secret !== null)).toHaveLength(1);
  });

  it('refuses bad URLs and unknown, deprecated or empty subscriptions, creating nothing', async () => {
    const before = (await h.gql(Webhooks, { first: 100 })).data!.webhooks.edges.length;
    const refusals: [Partial<CreateWebhookInput>, string, RegExp][] = [
      [{ url: 'http://93.184.216.34/hook' }, 'url', /https/],
      [{ url: 'https://localhost/hook' }, 'url', /internal/],
      [{ url: 'https://3232235777/hook' }, 'url', /private/],
      [{ url: 'https://10.0.0.1/hook' }, 'url', /private/],
      [{ url: 'https://[::ffff:169.254.169.254]/' }, 'url', /linkLocal/],
      [{ subscribedEvents: [] }, 'subscribedEvents', /at least one/],
      [{ subscribedEvents: ['nope.nothing.here'] }, 'subscribedEvents.0', /not an event type/],
      [{ subscribedEvents: [types.paid, types.old] }, 'subscribedEvents.1', /deprecated/],
      [{ subscribedEvents: ['zz.*'] }, 'subscribedEvents.0', /matches no event type/],
      [{ subscribedEvents: ['Invoices.>'] }, 'subscribedEvents.0', /event type/],
      [{ name: 'n'.repeat(256) }, 'name', /255/],
      [{ externalId: 'x'.repeat(256) }, 'externalId', /255/],
    ];
    for (const [input, field, message] of refusals) {
      const result = await create(input);
      expect(result.__typename, field).toBe('ValidationError');
      if (result.__typename !== 'ValidationError') continue;
      expect(
        result.fields.map((f) => f.path.join('.')),
        field,
      ).toContain(`input.${field}`);
      expect(result.fields.find((f) => f.path.join('.') === `input.${field}`)!.message).toMatch(message);
    }
    expect((await h.gql(Webhooks, { first: 100 })).data!.webhooks.edges.length).toBe(before);

    const wildcard = await created({ subscribedEvents: [`${types.paid.split('.')[0]}.*`, '*'] });
    expect(wildcard.webhook.subscribedEvents).toHaveLength(2);
    const local = await created({ url: 'https://127.0.0.1:9443/receiver' });
    expect(local.webhook.url).toBe('https://127.0.0.1:9443/receiver');
  });

  it('updates with JSON Merge Patch meaning, field by field', async () => {
    const { webhook } = await created({
      name: 'Patch me',
      externalId: 'patch-1',
      subscribedEvents: [types.paid],
    });
    const id = webhook.id;
    const patched = async (input: object) => {
      const result = await update({ id, ...input });
      if (result.__typename !== 'WebhookPayload') throw new Error(JSON.stringify(result));
      return result.webhook;
    };

    expect(await patched({})).toMatchObject({ name: 'Patch me', externalId: 'patch-1', isActive: true });
    expect(await patched({ url: 'https://8.8.8.8/new' })).toMatchObject({
      url: 'https://8.8.8.8/new',
      name: 'Patch me',
    });
    expect(await patched({ subscribedEvents: [types.sent, types.lead] })).toMatchObject({
      subscribedEvents: [types.sent, types.lead],
      url: 'https://8.8.8.8/new',
    });
    expect(await patched({ name: null })).toMatchObject({ name: null, externalId: 'patch-1' });
    expect(await patched({ externalId: null })).toMatchObject({ externalId: null, name: null });
    const disabled = await patched({ isActive: false, disabledReason: 'maintenance' });
    expect(disabled).toMatchObject({ isActive: false, disabledReason: 'maintenance' });
    expect(disabled.disabledAt).not.toBeNull();
    expect(await patched({ isActive: true })).toMatchObject({
      isActive: true,
      disabledAt: null,
      disabledReason: null,
    });

    for (const field of ['url', 'subscribedEvents', 'isActive']) {
      const result = await update({ id, [field]: null });
      expect(result, field).toMatchObject({
        __typename: 'ValidationError',
        fields: [{ path: ['input', field] }],
      });
    }
    expect(await update({ id, url: 'https://192.168.0.10/' })).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'url'] }],
    });
    expect(await update({ id, subscribedEvents: ['missing.type.here'] })).toMatchObject({
      __typename: 'ValidationError',
    });
    expect((await h.gql(WebhookById, { id })).data!.webhook).toMatchObject({
      url: 'https://8.8.8.8/new',
      subscribedEvents: [types.sent, types.lead],
      isActive: true,
    });

    const audit = (
      await h.gql(AuditLogs, { filter: { relationName: 'Webhook', relationId: rawId(id) } })
    ).data!.auditLogs.edges.map((e) => e.node);
    expect(audit.filter((e) => e.action === 'webhook.updated')).toHaveLength(6);
    const nameCleared = audit.find(
      (e) =>
        (e.metadata as { changes: Record<string, unknown> }).changes.name !== undefined &&
        e.action === 'webhook.updated',
    );
    expect(nameCleared!.metadata).toEqual({ changes: { name: { before: 'Patch me', after: null } } });
  });

  it('enables and disables with when and why', async () => {
    const { webhook } = await created();
    const off = (await h.gql(DisableWebhook, { input: { id: webhook.id, reason: 'receiver moving' } })).data!
      .disableWebhook;
    expect(off).toMatchObject({ webhook: { isActive: false, disabledReason: 'receiver moving' } });
    const on = (await h.gql(EnableWebhook, { input: { id: webhook.id } })).data!.enableWebhook;
    expect(on).toMatchObject({ webhook: { isActive: true, disabledAt: null, disabledReason: null } });
  });

  it('keeps dashboard-managed webhooks out of integrations’ reach', async () => {
    const zapier = await token('ZAPIER');
    const { webhook } = await created({ name: 'Dashboard owned' });
    expect(await update({ id: webhook.id, name: 'hijacked' }, zapier)).toMatchObject({
      __typename: 'ForbiddenError',
    });
    expect((await zapier(DeleteWebhook, { input: { id: webhook.id } })).data!.deleteWebhook.__typename).toBe(
      'ForbiddenError',
    );
    expect(
      (await zapier(RotateSecret, { input: { id: webhook.id } })).data!.rotateWebhookSecret.__typename,
    ).toBe('ForbiddenError');
    expect(
      (await zapier(DisableWebhook, { input: { id: webhook.id } })).data!.disableWebhook.__typename,
    ).toBe('ForbiddenError');
    expect((await h.gql(WebhookById, { id: webhook.id })).data!.webhook).toMatchObject({
      name: 'Dashboard owned',
      isActive: true,
    });
    // Nor read: an integration sees the webhooks its own client manages.
    expect((await zapier(WebhookById, { id: webhook.id })).data!.webhook).toBeNull();
    expect((await zapier(NodeById, { id: webhook.id })).data!.node).toBeNull();
    const listed = (await zapier(Webhooks, { first: 100 })).data!.webhooks.edges.map((e) => e.node.id);
    expect(listed).not.toContain(webhook.id);

    const own = await created({ name: 'Zap owned' }, zapier);
    expect(await update({ id: own.webhook.id, name: 'renamed' }, zapier)).toMatchObject({
      __typename: 'WebhookPayload',
    });
    expect((await zapier(Webhooks, { first: 100 })).data!.webhooks.edges.map((e) => e.node.id)).toContain(
      own.webhook.id,
    );
    expect(
      (await zapier(DeleteWebhook, { input: { id: own.webhook.id } })).data!.deleteWebhook.__typename,
    ).toBe('WebhookPayload');
    expect((await h.gql(WebhookById, { id: own.webhook.id })).data!.webhook).toBeNull();
  });

  it('answers malformed and wrong-type ids with BAD_USER_INPUT', async () => {
    const garbage = await h.gql(WebhookById, { id: 'garbage' });
    expect(garbage.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const wrongType = await h.gql(UpdateWebhook, { input: { id: h.tenantId, name: 'x' } });
    expect(wrongType.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(wrongType.errors?.[0]?.message).toMatch(/not of type/);
    const huge = await h.gql(WebhookById, { id: 'x'.repeat(10_000) });
    expect(huge.errors?.[0]?.message.length).toBeLessThan(300);
  });

  it('answers what review found with typed errors and no change', async () => {
    const huge = await h.gql(Webhooks, { filter: { eventType: 'a.'.repeat(200_000) } });
    expect(huge.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const nul = await h.gql(Webhooks, { filter: { search: 'a\u0000b' } });
    expect(nul.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await create({ url: 'https://93.184.216.34/a\nb' })).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'url'] }],
    });

    const zapier = await token('ZAPIER');
    await created({ externalId: 'taken' }, zapier);
    const other = await created({ externalId: 'free' }, zapier);
    expect(await update({ id: other.webhook.id, externalId: 'taken' }, zapier)).toMatchObject({
      __typename: 'ConflictError',
    });

    const { webhook } = await created({ url: 'https://93.184.216.34/hook?token=s3cret' });
    expect(await update({ id: webhook.id, disabledReason: 'while active' })).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'disabledReason'] }],
    });
    await h.gql(DisableWebhook, { input: { id: webhook.id, reason: 'first' } });
    const again = (await h.gql(DisableWebhook, { input: { id: webhook.id, reason: 'second' } })).data!
      .disableWebhook;
    expect(again).toMatchObject({ webhook: { disabledReason: 'second' } });
    expect(await update({ id: webhook.id, disabledReason: 'third' })).toMatchObject({
      webhook: { disabledReason: 'third', isActive: false },
    });

    expect(
      (await h.gql(RotateSecret, { input: { id: webhook.id } })).data!.rotateWebhookSecret.__typename,
    ).toBe('RotateWebhookSecretPayload');
    expect(
      (await h.gql(RotateSecret, { input: { id: webhook.id } })).data!.rotateWebhookSecret.__typename,
    ).toBe('ConflictError');
    const audit = JSON.stringify(
      (await h.gql(AuditLogs, { filter: { relationName: 'Webhook', relationId: rawId(webhook.id) } })).data!
        .auditLogs,
    );
    expect(audit).toContain('https://93.184.216.34/hook');
    expect(audit).not.toContain('s3cret');
  });

  it('replays an externalId racing for the last slot of the plan', async () => {
    const tenant = (await h.operator(CreateTenant, { input: { name: 'One slot', maxWebhooks: 1 } })).data!
      .createTenant;
    if (tenant.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    const one = httpExecutor(h.url, tenant.token);
    const results = await Promise.all(Array.from({ length: 6 }, () => create({ externalId: 'only' }, one)));
    expect(results.map((r) => r.__typename)).toEqual(Array(6).fill('CreateWebhookPayload'));
    expect(results.filter((r) => r.__typename === 'CreateWebhookPayload' && r.created)).toHaveLength(1);
  });

  it('stops at the plan limit, also under concurrent creates', async () => {
    const tenant = (await h.operator(CreateTenant, { input: { name: 'Small plan', maxWebhooks: 2 } })).data!
      .createTenant;
    if (tenant.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    const small = httpExecutor(h.url, tenant.token);
    const results = await Promise.all(Array.from({ length: 5 }, (_, i) => create({ name: `w${i}` }, small)));
    expect(results.filter((r) => r.__typename === 'CreateWebhookPayload')).toHaveLength(2);
    expect(results.filter((r) => r.__typename === 'PlanLimitError')).toEqual([
      { __typename: 'PlanLimitError', limit: 2 },
      { __typename: 'PlanLimitError', limit: 2 },
      { __typename: 'PlanLimitError', limit: 2 },
    ]);
    expect((await small(Webhooks, { first: 100 })).data!.webhooks.edges).toHaveLength(2);
  });

  it('lists with filters and stable pages, and hides other tenants', async () => {
    const tenant = (await h.operator(CreateTenant, { input: { name: 'Listing' } })).data!.createTenant;
    if (tenant.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    const gql = httpExecutor(h.url, tenant.token);
    const zapier = (
      await gql(CreateApiToken, {
        input: { name: 'z', scopes: ['webhooks:manage', 'webhooks:read'], client: 'ZAPIER' },
      })
    ).data!.createApiToken;
    if (zapier.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    const zap = httpExecutor(h.url, zapier.token);

    const a = await created({ name: 'Alpha 100%', subscribedEvents: [types.paid] }, gql);
    const b = await created(
      { name: 'Beta', url: 'https://8.8.4.4/beta', subscribedEvents: [types.sent] },
      gql,
    );
    const c = await created(
      { name: 'Gamma', subscribedEvents: [`${types.paid.split('.')[0]}.invoice.*`] },
      zap,
    );
    const d = await created(
      { name: 'Delta', subscribedEvents: [types.lead], externalId: 'ext-d', isActive: false },
      gql,
    );
    const names = async (filter: WebhookFilter) =>
      (await gql(Webhooks, { first: 100, filter })).data!.webhooks.edges.map((e) => e.node.name).sort();

    expect(await names({})).toEqual(['Alpha 100%', 'Beta', 'Delta', 'Gamma']);
    expect(await names({ isActive: false })).toEqual(['Delta']);
    expect(await names({ eventType: types.paid })).toEqual(['Alpha 100%', 'Gamma']);
    expect(await names({ eventType: types.sent })).toEqual(['Beta', 'Gamma']);
    expect(await names({ managedBy: 'ZAPIER' })).toEqual(['Gamma']);
    expect(await names({ externalId: 'ext-d' })).toEqual(['Delta']);
    expect(await names({ search: 'ALPHA' })).toEqual(['Alpha 100%']);
    expect(await names({ search: '100%' })).toEqual(['Alpha 100%']);
    expect(await names({ search: '%' })).toEqual(['Alpha 100%']);
    expect(await names({ search: '8.8.4.4' })).toEqual(['Beta']);

    const pages: string[] = [];
    let after: string | null = null;
    do {
      const page: {
        edges: { node: { name?: string | null } }[];
        pageInfo: { hasNextPage: boolean; endCursor?: string | null };
      } = (await gql(Webhooks, { first: 3, after })).data!.webhooks;
      pages.push(...page.edges.map((e) => e.node.name!));
      after = page.pageInfo.hasNextPage ? page.pageInfo.endCursor! : null;
    } while (after);
    expect(pages).toEqual(['Delta', 'Gamma', 'Beta', 'Alpha 100%']);

    const mine = (await h.gql(Webhooks, { first: 100 })).data!.webhooks.edges.map((e) => e.node.id);
    for (const other of [a, b, c, d]) {
      expect(mine).not.toContain(other.webhook.id);
      expect((await h.gql(WebhookById, { id: other.webhook.id })).data!.webhook).toBeNull();
      expect(await update({ id: other.webhook.id, name: 'x' })).toMatchObject({
        __typename: 'NotFoundError',
      });
      expect(
        (await h.gql(DeleteWebhook, { input: { id: other.webhook.id } })).data!.deleteWebhook.__typename,
      ).toBe('NotFoundError');
    }
  });
});
