import { randomBytes } from 'node:crypto';
import { Webhook as StandardWebhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import {
  collect,
  httpExecutor,
  modes,
  publishOrFail,
  rawId,
  startTestApp,
  webhookTo,
  type TestApp,
} from './support/app.ts';
import { AuditLogs, EventPublished, UpsertEventType, Viewer } from './support/operations.ts';
import { startReceiver, toLocalReceivers, type Received } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const PublishAppVersion = graphql(`
  mutation PublishAppVersion($input: PublishAppVersionInput!) {
    publishAppVersion(input: $input) {
      __typename
      ... on PublishAppVersionPayload {
        app {
          id
          key
        }
        version {
          version
          scopes
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on Error {
        message
      }
    }
  }
`);

const InstallApp = graphql(`
  mutation InstallApp($input: InstallAppInput!) {
    installApp(input: $input) {
      __typename
      ... on InstallAppPayload {
        token
        installation {
          id
        }
        webhooks {
          key
          secret
          webhook {
            id
            url
            manifestKey
          }
        }
      }
      ... on Error {
        message
      }
    }
  }
`);

const PreviewAppUpgrade = graphql(`
  mutation PreviewAppUpgrade($input: PreviewAppUpgradeInput!) {
    previewAppUpgrade(input: $input) {
      __typename
      ... on PreviewAppUpgradePayload {
        preview {
          from {
            version
          }
          to {
            version
          }
          added {
            key
          }
          removed {
            key
          }
          changed {
            key
            fields
          }
          scopesAdded
          scopesDropped
        }
      }
    }
  }
`);

const UpgradeApp = graphql(`
  mutation UpgradeApp($input: UpgradeAppInput!) {
    upgradeApp(input: $input) {
      __typename
      ... on UpgradeAppPayload {
        webhooks {
          key
          secret
          webhook {
            id
          }
        }
      }
      ... on Error {
        message
      }
    }
  }
`);

const UninstallApp = graphql(`
  mutation UninstallApp($input: UninstallAppInput!) {
    uninstallApp(input: $input) {
      __typename
    }
  }
`);

const AppInstallations = graphql(`
  query AppInstallations {
    appInstallations(first: 10) {
      edges {
        node {
          id
          app {
            key
          }
          version {
            version
          }
          webhooks {
            id
            url
            manifestKey
          }
        }
      }
    }
  }
`);

const AppCreatesWebhook = graphql(`
  mutation AppCreatesWebhook($input: CreateWebhookInput!) {
    createWebhook(input: $input) {
      __typename
      ... on CreateWebhookPayload {
        webhook {
          id
        }
      }
      ... on MissingScopeError {
        scope
        eventType
        path
      }
    }
  }
`);

const AppUpdatesWebhook = graphql(`
  mutation AppUpdatesWebhook($input: UpdateWebhookInput!) {
    updateWebhook(input: $input) {
      __typename
      ... on MissingScopeError {
        scope
        eventType
      }
    }
  }
`);

const AppReadsEvents = graphql(`
  query AppReadsEvents($filter: EventFilter) {
    events(first: 10, filter: $filter) {
      edges {
        node {
          type
          current
          previous
        }
      }
    }
  }
`);

const WebhookDeliveries = graphql(`
  query WebhookDeliveries($webhookId: ID!) {
    deliveries(first: 50, filter: { webhookId: $webhookId }) {
      edges {
        node {
          id
        }
      }
    }
  }
`);

const AppAttempts = graphql(`
  subscription AppAttempts($webhookId: ID) {
    deliveryAttempted(webhookId: $webhookId) {
      deliveryId
    }
  }
`);

const AppVersions = graphql(`
  query AppVersions {
    apps(first: 50) {
      edges {
        node {
          key
          versions {
            webhooks {
              url
            }
            manifest
          }
        }
      }
    }
  }
`);

describe.each(modes)('apps (%s)', (mode) => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    h = await startTestApp(mode, { env: toLocalReceivers });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await h?.stop();
  });

  /** A module of the catalog for one test: contacts (email and streets need the PII scope) and deals. */
  async function catalog() {
    const m = `m${randomBytes(4).toString('hex')}`;
    const pii = `${m}.contact.pii:read`;
    const fieldScopes = [
      { path: 'email', scope: pii },
      { path: 'addresses.street', scope: pii },
    ];
    for (const name of [`${m}.contact.created`, `${m}.contact.updated`]) {
      await h.operator(UpsertEventType, { input: { name, group: 'CRM', fieldScopes } });
    }
    await h.operator(UpsertEventType, { input: { name: `${m}.deal.created`, group: 'CRM' } });
    return { m, pii };
  }

  async function publish(appKey: string, version: string, manifest: unknown) {
    const result = (
      await h.operator(PublishAppVersion, { input: { appKey, name: 'CRM sync', version, manifest } })
    ).data!.publishAppVersion;
    if (result.__typename !== 'PublishAppVersionPayload') throw new Error(JSON.stringify(result));
    return result;
  }

  async function install(appId: string, version?: string) {
    const result = (await h.gql(InstallApp, { input: { appId, version } })).data!.installApp;
    if (result.__typename !== 'InstallAppPayload') throw new Error(JSON.stringify(result));
    return result;
  }

  const arrivals = (path: string) => receiver.received.filter((r) => r.path === path);
  const arrived = (path: string, count = 1) =>
    waitFor(() => arrivals(path).length >= count && arrivals(path), { what: `${count} at ${path}` });
  const payload = (r: Received) =>
    JSON.parse(r.body) as { type: string; current: unknown; previous: unknown };

  it('refuses a bad manifest naming each bad path, and lets only the operator publish', async () => {
    const { m } = await catalog();
    const appKey = `crm-${randomBytes(3).toString('hex')}`;
    const bad = (
      await h.operator(PublishAppVersion, {
        input: {
          appKey,
          name: 'Bad',
          version: '1.0.0',
          manifest: {
            scopes: [`${m}.contact:read`, `${m}.invoice:read`, 'not a scope'],
            webhooks: [
              {
                key: 'contacts',
                url: `${receiver.url}/x`,
                events: [`${m}.contact.created`, `${m}.deal.created`],
              },
              { key: 'contacts', url: 'http://10.1.2.3/hook', events: [`${m}.nothing.here`] },
            ],
          },
        },
      })
    ).data!.publishAppVersion;
    if (bad.__typename !== 'ValidationError') throw new Error(bad.__typename);
    expect(bad.fields.map((f) => f.path.join('.'))).toContain('input.manifest.scopes.2');
    const twice = (
      await h.operator(PublishAppVersion, {
        input: {
          appKey,
          name: 'Bad',
          version: '1.0.0',
          manifest: {
            scopes: [`${m}.contact:read`],
            webhooks: [
              { key: 'contacts', url: `${receiver.url}/x`, events: [`${m}.contact.created`] },
              { key: 'contacts', url: `${receiver.url}/y`, events: [`${m}.contact.updated`] },
            ],
          },
        },
      })
    ).data!.publishAppVersion;
    expect(twice).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'manifest', 'webhooks', '1', 'key'] }],
    });

    const uncovered = (
      await h.operator(PublishAppVersion, {
        input: {
          appKey,
          name: 'Bad',
          version: '1.0.0',
          manifest: {
            scopes: [`${m}.contact:read`, `${m}.invoice:read`],
            webhooks: [
              {
                key: 'contacts',
                url: `${receiver.url}/x`,
                events: [`${m}.contact.created`, `${m}.deal.created`],
              },
              { key: 'elsewhere', url: 'http://10.1.2.3/hook', events: [`${m}.nothing.here`] },
            ],
          },
        },
      })
    ).data!.publishAppVersion;
    if (uncovered.__typename !== 'ValidationError') throw new Error(uncovered.__typename);
    const problems = Object.fromEntries(uncovered.fields.map((f) => [f.path.join('.'), f.message]));
    expect(problems).toMatchObject({
      'input.manifest.scopes.1': expect.stringMatching(/not a scope of the catalog/) as string,
      'input.manifest.webhooks.0.events.1': `webhook contacts needs the scope ${m}.deal:read for ${m}.deal.created`,
      'input.manifest.webhooks.1.events.0': expect.stringMatching(/matches no event type/) as string,
      'input.manifest.webhooks.1.url': expect.any(String) as string,
    });
    expect(Object.keys(problems)).toHaveLength(4);

    const byTenant = (
      await h.gql(PublishAppVersion, {
        input: {
          appKey,
          name: 'Mine',
          version: '1.0.0',
          manifest: { scopes: [`${m}.contact:read`], webhooks: [] },
        },
      })
    ).data!.publishAppVersion;
    expect(byTenant.__typename).toBe('ForbiddenError');

    await publish(appKey, '1.0.0', { scopes: [`${m}.contact:read`], webhooks: [] });
    const again = (
      await h.operator(PublishAppVersion, {
        input: {
          appKey,
          name: 'CRM sync',
          version: '1.0.0',
          manifest: { scopes: [`${m}.deal:read`], webhooks: [] },
        },
      })
    ).data!.publishAppVersion;
    expect(again.__typename).toBe('ConflictError');
  });

  it('installs, delivers only what the scopes allow, gates webhooks, upgrades in place and uninstalls', async () => {
    const { m, pii } = await catalog();
    const appKey = `crm-${randomBytes(3).toString('hex')}`;
    const path = (name: string) => `/${appKey}/${name}`;
    const v1 = await publish(appKey, '1.0.0', {
      scopes: [`${m}.contact:read`],
      webhooks: [
        { key: 'created', url: `${receiver.url}${path('created')}`, events: [`${m}.contact.created`] },
        { key: 'updated', url: `${receiver.url}${path('updated')}`, events: [`${m}.contact.updated`] },
      ],
    });
    // The lifecycle types are in the catalog once an app is published.
    await webhookTo(h.gql, `${receiver.url}${path('lifecycle')}`, ['app.*']);
    const installed = await install(v1.app.id);
    expect(installed.webhooks.map((w) => w.key).sort()).toEqual(['created', 'updated']);
    const full = await webhookTo(h.gql, `${receiver.url}${path('full')}`, [`${m}.contact.*`]);
    expect(full.webhookId).toBeTruthy();

    // Payload filtering: the app lacks the PII scope, at any depth and in previous too.
    const contact = {
      name: 'Ada',
      email: 'ada@example.com',
      addresses: [{ street: '1 Main St', city: 'Leeds' }],
    };
    await publishOrFail(h.gql, {
      type: `${m}.contact.updated`,
      current: contact,
      previous: { ...contact, email: 'old@example.com' },
    });
    const [seen] = await arrived(path('updated'));
    expect(payload(seen!)).toMatchObject({
      current: { name: 'Ada', addresses: [{ city: 'Leeds' }] },
      previous: { name: 'Ada', addresses: [{ city: 'Leeds' }] },
    });
    expect(seen!.body).not.toContain('example.com');
    expect(seen!.body).not.toContain('Main St');
    const secret = installed.webhooks.find((w) => w.key === 'updated')!.secret;
    expect(() =>
      new StandardWebhook(secret).verify(seen!.body, seen!.headers as Record<string, string>),
    ).not.toThrow();
    const [whole] = await arrived(path('full'));
    expect(payload(whole!).current).toEqual(contact);

    // The app's token: its reads are limited the same way, and its webhooks gated by its scopes.
    const app = httpExecutor(h.url, installed.token);
    const viewer = (await app(Viewer, {})).data!.viewer;
    expect(viewer.client).toBe('APP');
    const read = (await app(AppReadsEvents, { filter: { types: [`${m}.contact.updated`] } })).data!.events
      .edges;
    expect(read[0]!.node.current).toEqual({ name: 'Ada', addresses: [{ city: 'Leeds' }] });
    const refused = (
      await app(AppCreatesWebhook, {
        input: {
          url: `${receiver.url}${path('deals')}`,
          subscribedEvents: [`${m}.contact.created`, `${m}.deal.created`],
        },
      })
    ).data!.createWebhook;
    expect(refused).toEqual({
      __typename: 'MissingScopeError',
      scope: `${m}.deal:read`,
      eventType: `${m}.deal.created`,
      path: ['input', 'subscribedEvents', '1'],
    });
    const own = (
      await app(AppCreatesWebhook, {
        input: { url: `${receiver.url}${path('own')}`, subscribedEvents: [`${m}.contact.created`] },
      })
    ).data!.createWebhook;
    if (own.__typename !== 'CreateWebhookPayload') throw new Error(own.__typename);
    const widened = (
      await app(AppUpdatesWebhook, { input: { id: own.webhook.id, subscribedEvents: [`${m}.*`] } })
    ).data!.updateWebhook;
    expect(widened).toMatchObject({ __typename: 'MissingScopeError', scope: `${m}.deal:read` });

    // Upgrade: `created` removed, `updated` changed in place, `deals` added, PII granted.
    const installationId = installed.installation.id;
    const updatedId = installed.webhooks.find((w) => w.key === 'updated')!.webhook.id;
    await publish(appKey, '2.0.0', {
      scopes: [`${m}.contact:read`, `${m}.deal:read`, pii],
      webhooks: [
        { key: 'updated', url: `${receiver.url}${path('updated-v2')}`, events: [`${m}.contact.updated`] },
        { key: 'deals', url: `${receiver.url}${path('deals')}`, events: [`${m}.deal.created`] },
      ],
    });
    const preview = (await h.gql(PreviewAppUpgrade, { input: { installationId, version: '2.0.0' } })).data!
      .previewAppUpgrade;
    expect(preview).toMatchObject({
      preview: {
        from: { version: '1.0.0' },
        to: { version: '2.0.0' },
        added: [{ key: 'deals' }],
        removed: [{ key: 'created' }],
        changed: [{ key: 'updated', fields: ['url'] }],
        scopesAdded: [`${m}.deal:read`, pii],
        scopesDropped: [],
      },
    });
    const upgraded = (await h.gql(UpgradeApp, { input: { installationId, version: '2.0.0' } })).data!
      .upgradeApp;
    if (upgraded.__typename !== 'UpgradeAppPayload') throw new Error(JSON.stringify(upgraded));
    expect(upgraded.webhooks.map((w) => w.key)).toEqual(['deals']);
    const [installation] = (await h.gql(AppInstallations, {})).data!.appInstallations.edges.map(
      (e) => e.node,
    );
    expect(installation!.version.version).toBe('2.0.0');
    const keys = installation!.webhooks.map((w) => w.manifestKey).sort();
    expect(keys).toEqual(['deals', 'updated', null].sort());
    const kept = installation!.webhooks.find((w) => w.manifestKey === 'updated')!;
    expect(kept).toMatchObject({ id: updatedId, url: `${receiver.url}${path('updated-v2')}` });
    const log = (await h.gql(WebhookDeliveries, { webhookId: updatedId })).data!.deliveries.edges;
    expect(log).toHaveLength(1);

    await publishOrFail(h.gql, { type: `${m}.contact.updated`, current: contact });
    const [after] = await arrived(path('updated-v2'));
    expect(payload(after!).current).toEqual(contact);
    expect(() =>
      new StandardWebhook(secret).verify(after!.body, after!.headers as Record<string, string>),
    ).not.toThrow();
    const now = (
      await app(AppCreatesWebhook, {
        input: { url: `${receiver.url}${path('deals-own')}`, subscribedEvents: [`${m}.deal.created`] },
      })
    ).data!.createWebhook;
    expect(now.__typename).toBe('CreateWebhookPayload');

    // Uninstall: the app's webhooks go, its token stops working.
    const gone = (await h.gql(UninstallApp, { input: { installationId } })).data!.uninstallApp;
    expect(gone.__typename).toBe('UninstallAppPayload');
    expect((await h.gql(AppInstallations, {})).data!.appInstallations.edges).toEqual([]);
    expect(await app(Viewer, {})).toMatchObject({ status: 401 });

    // Lifecycle events reached the tenant's other webhooks, and each step is audited.
    const events = await arrived(path('lifecycle'), 3);
    expect(events.map((r) => payload(r).type)).toEqual(['app.installed', 'app.upgraded', 'app.uninstalled']);
    expect(payload(events[1]!)).toMatchObject({
      current: { appKey, version: '2.0.0' },
      previous: { appKey, version: '1.0.0' },
    });
    const audited = (
      await h.gql(AuditLogs, {
        filter: { actions: ['app.installed', 'app.upgraded', 'app.uninstalled', 'api_token.updated'] },
      })
    ).data!.auditLogs.edges.filter((e) => e.node.related?.id === rawId(v1.app.id));
    expect(audited.map((e) => e.node.action).sort()).toEqual([
      'api_token.updated',
      'app.installed',
      'app.uninstalled',
      'app.upgraded',
    ]);
  });

  it("keeps apps out of each other's webhooks and deliveries, and a dashboard within an app's scopes", async () => {
    const { m } = await catalog();
    const appKey = (name: string) => `${name}-${randomBytes(3).toString('hex')}`;
    const a = await publish(appKey('a'), '1.0.0', {
      scopes: [`${m}.contact:read`],
      webhooks: [{ key: 'contacts', url: `${receiver.url}/${m}/a`, events: [`${m}.contact.created`] }],
    });
    const b = await publish(appKey('b'), '1.0.0', { scopes: [`${m}.contact:read`], webhooks: [] });
    const first = await install(a.app.id);
    const second = await install(b.app.id);
    const own = first.webhooks[0]!.webhook.id;
    await publishOrFail(h.gql, { type: `${m}.contact.created`, current: { name: 'Ada' } });
    await arrived(`/${m}/a`);

    const appA = httpExecutor(h.url, first.token);
    const appB = httpExecutor(h.url, second.token);
    expect((await appB(WebhookDeliveries, { webhookId: own })).data!.deliveries.edges).toEqual([]);
    await waitFor(
      async () => (await appA(WebhookDeliveries, { webhookId: own })).data!.deliveries.edges.length === 1,
      { what: "app A's delivery in its log" },
    );
    const moved = (await appB(AppUpdatesWebhook, { input: { id: own, url: `${receiver.url}/${m}/stolen` } }))
      .data!.updateWebhook;
    expect(moved.__typename).toBe('NotFoundError');

    const widened = (await h.gql(AppUpdatesWebhook, { input: { id: own, subscribedEvents: [`${m}.*`] } }))
      .data!.updateWebhook;
    expect(widened).toMatchObject({ __typename: 'MissingScopeError', scope: `${m}.deal:read` });
  });

  it('delivers to an app no type added later that its scopes do not cover, and shows tenants no URL secrets', async () => {
    const m = `m${randomBytes(4).toString('hex')}`;
    await h.operator(UpsertEventType, { input: { name: `${m}.contact.created`, group: 'CRM' } });
    const appKey = `crm-${randomBytes(3).toString('hex')}`;
    const v1 = await publish(appKey, '1.0.0', {
      scopes: [`${m}.contact:read`],
      webhooks: [{ key: 'all', url: `${receiver.url}/${m}/all?token=s3cr3t`, events: [`${m}.*`] }],
    });
    await install(v1.app.id);
    await h.operator(UpsertEventType, { input: { name: `${m}.deal.created`, group: 'CRM' } });
    await webhookTo(h.gql, `${receiver.url}/${m}/everything`, [`${m}.*`]);
    await publishOrFail(h.gql, { type: `${m}.deal.created`, current: { amount: 1 } });
    await publishOrFail(h.gql, { type: `${m}.contact.created`, current: { name: 'Ada' } });
    const [, contact] = await arrived(`/${m}/everything`, 2);
    expect(payload(contact!).type).toBe(`${m}.contact.created`);
    const toApp = await arrived(`/${m}/all?token=s3cr3t`);
    expect(toApp.map((r) => payload(r).type)).toEqual([`${m}.contact.created`]);

    const listed = (await h.gql(AppVersions, {})).data!.apps.edges.find((e) => e.node.key === appKey)!;
    expect(JSON.stringify(listed)).not.toContain('s3cr3t');
    expect(listed.node.versions[0]!.webhooks[0]!.url).toBe(`${receiver.url}/${m}/all`);
    const operatorView = (await h.operator(AppVersions, {})).data!.apps.edges.find(
      (e) => e.node.key === appKey,
    )!;
    expect(operatorView.node.versions[0]!.webhooks[0]!.url).toContain('s3cr3t');
  });

  it("ends an app token's subscriptions on upgrade, and keeps its live attempts to its own webhooks", async () => {
    const { m, pii } = await catalog();
    const appKey = `crm-${randomBytes(3).toString('hex')}`;
    const v1 = await publish(appKey, '1.0.0', { scopes: [`${m}.contact:read`], webhooks: [] });
    await publish(appKey, '2.0.0', { scopes: [`${m}.contact:read`, pii], webhooks: [] });
    const installed = await install(v1.app.id, '1.0.0');
    const client = h.ws({ token: installed.token });
    const tenantWide = collect(client, AppAttempts, { webhookId: null });
    await waitFor(() => tenantWide.failure() ?? tenantWide.results[0], {
      what: 'the tenant-wide subscription refused',
    });
    expect(JSON.stringify([tenantWide.failure(), tenantWide.results])).toMatch(/give webhookId/);

    const open = collect(h.ws({ token: installed.token }), EventPublished, {
      types: [`${m}.contact.created`],
    });
    // Subscribed once an event published after it arrives.
    await waitFor(
      async () => {
        await publishOrFail(h.gql, {
          type: `${m}.contact.created`,
          current: { name: 'Ada', email: 'a@example.com' },
        });
        return open.results.length > 0;
      },
      { what: 'the first event, live' },
    );
    expect(open.results[0]!.data!.eventPublished.current).toEqual({ name: 'Ada' });
    const upgraded = (
      await h.gql(UpgradeApp, { input: { installationId: installed.installation.id, version: '2.0.0' } })
    ).data!.upgradeApp;
    expect(upgraded.__typename).toBe('UpgradeAppPayload');
    await waitFor(() => open.failure(), { what: 'the subscription to end' });
    const again = collect(h.ws({ token: installed.token }), EventPublished, {
      types: [`${m}.contact.created`],
    });
    await waitFor(
      async () => {
        await publishOrFail(h.gql, {
          type: `${m}.contact.created`,
          current: { name: 'Bo', email: 'b@example.com' },
        });
        return again.results.length > 0;
      },
      { what: 'an event on the new subscription' },
    );
    expect(again.results[0]!.data!.eventPublished.current).toEqual({ name: 'Bo', email: 'b@example.com' });
    await again.stop();
  });

  it("keeps a tenant's installations to itself", async () => {
    const { m } = await catalog();
    const appKey = `crm-${randomBytes(3).toString('hex')}`;
    const v1 = await publish(appKey, '1.0.0', { scopes: [`${m}.contact:read`], webhooks: [] });
    await publish(appKey, '1.1.0', { scopes: [`${m}.contact:read`, `${m}.deal:read`], webhooks: [] });
    const installed = await install(v1.app.id, '1.0.0');
    const other = await h.tenant('App stranger');
    expect((await other.gql(AppInstallations, {})).data!.appInstallations.edges).toEqual([]);
    const upgrade = (
      await other.gql(UpgradeApp, { input: { installationId: installed.installation.id, version: '1.1.0' } })
    ).data!.upgradeApp;
    expect(upgrade.__typename).toBe('NotFoundError');
    const uninstall = (
      await other.gql(UninstallApp, { input: { installationId: installed.installation.id } })
    ).data!.uninstallApp;
    expect(uninstall.__typename).toBe('NotFoundError');
    const twice = (await h.gql(InstallApp, { input: { appId: v1.app.id } })).data!.installApp;
    expect(twice.__typename).toBe('ConflictError');
    const theirs = (await other.gql(InstallApp, { input: { appId: v1.app.id } })).data!.installApp;
    expect(theirs.__typename).toBe('InstallAppPayload');
  });
});
