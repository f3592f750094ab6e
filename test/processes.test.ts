import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { collect, httpExecutor, liveEvents, wsClient } from './support/app.ts';
import { CreateTenant, CreateWebhook, PublishEvent, UpsertEventType } from './support/operations.ts';
import { run, started, type Running } from './support/processes.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const ReplicaAttempts = graphql(`
  subscription ReplicaAttempts($webhookId: ID) {
    deliveryAttempted(webhookId: $webhookId) {
      attempt
      status
      statusCode
      delivery {
        event {
          idempotencyKey
        }
      }
    }
  }
`);

describe('entry points', () => {
  const children: Running[] = [];
  afterAll(() => {
    for (const p of children) p.child.kill('SIGKILL');
  });

  it('prints every configuration problem and exits 1', async () => {
    const p = run('all', { PORT: 'eighty', DATABASE_URL: 'mysql://db/x', HERALD_NATS_PREFIX: 'Bad-Prefix' });
    children.push(p);
    expect(await p.exit).toBe(1);
    expect(p.stderr).toContain('invalid configuration');
    for (const name of ['PORT', 'DATABASE_URL', 'HERALD_NATS_PREFIX']) expect(p.stderr).toContain(name);
  });

  it('runs api and worker as separate processes and stops them gracefully on SIGTERM', async () => {
    const token = `hrld_test_${randomBytes(18).toString('base64url')}`;
    const env = {
      DATABASE_URL: inject('databaseUrl'),
      NATS_URL: inject('natsUrl'),
      HERALD_NATS_PREFIX: inject('natsPrefix'),
      HERALD_ADMIN_TOKEN: token,
      HERALD_SECRET_KEY: inject('secretKey'),
      PORT: '0',
      LOG_LEVEL: 'info',
    };
    const api = run('api', env);
    const worker = run('worker', env);
    children.push(api, worker);
    const { url } = await started(api);
    await started(worker);
    expect(worker.lines.find((l) => l.msg === 'herald started')).toMatchObject({ role: 'worker' });

    const operator = httpExecutor(url!, token);
    const type = `p${randomBytes(4).toString('hex')}.order.created`;
    const added = await operator(UpsertEventType, { input: { name: type, group: 'Orders' } });
    expect(added.data?.upsertEventType.__typename).toBe('UpsertEventTypePayload');
    const tenant = (await operator(CreateTenant, { input: { name: 'Processes' } })).data?.createTenant;
    if (tenant?.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    const gql = httpExecutor(url!, tenant.token);
    const client = wsClient(url!, tenant.token);
    const sub = await liveEvents(client, gql, [type]);
    await gql(PublishEvent, { input: { type, idempotencyKey: `${type}/through-the-api-process` } });
    await waitFor(() => sub.keys().includes(`${type}/through-the-api-process`), { what: 'the event' });

    api.child.kill('SIGTERM');
    worker.child.kill('SIGTERM');
    expect(await api.exit).toBe(0);
    expect(await worker.exit).toBe(0);
    await waitFor(() => sub.failure(), { what: 'the socket to close' });
    expect((sub.failure() as { code: number }).code).toBe(1001);
    expect(api.lines.some((l) => l.msg === 'herald stopped')).toBe(true);
    await client.dispose();
  });

  it('shows a subscriber on one API process the attempts a worker process makes for another', async () => {
    const token = `hrld_test_${randomBytes(18).toString('base64url')}`;
    const env = {
      DATABASE_URL: inject('databaseUrl'),
      NATS_URL: inject('natsUrl'),
      HERALD_NATS_PREFIX: inject('natsPrefix'),
      HERALD_ADMIN_TOKEN: token,
      HERALD_SECRET_KEY: inject('secretKey'),
      ...toLocalReceivers,
      PORT: '0',
      LOG_LEVEL: 'info',
    };
    const [first, second, worker] = [run('api', env), run('api', env), run('worker', env)];
    children.push(first, second, worker);
    const [{ url: publishing }, { url: watching }] = await Promise.all([started(first), started(second)]);
    await started(worker);
    const receiver = await startReceiver();

    const operator = httpExecutor(publishing!, token);
    const type = `p${randomBytes(4).toString('hex')}.order.shipped`;
    await operator(UpsertEventType, { input: { name: type, group: 'Orders' } });
    const tenant = (await operator(CreateTenant, { input: { name: 'Replicas' } })).data?.createTenant;
    if (tenant?.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    const gql = httpExecutor(publishing!, tenant.token);
    const created = (
      await gql(CreateWebhook, { input: { url: `${receiver.url}/in`, subscribedEvents: [type] } })
    ).data?.createWebhook;
    if (created?.__typename !== 'CreateWebhookPayload') throw new Error('createWebhook failed');

    const client = wsClient(watching!, tenant.token);
    const sub = collect(client, ReplicaAttempts, { webhookId: created.webhook.id });
    const keys = () =>
      sub.results.map((r) => r.data?.deliveryAttempted.delivery?.event?.idempotencyKey ?? null);
    let probes = 0;
    await waitFor(
      async () => {
        if (sub.results.length > 0) return true;
        await gql(PublishEvent, { input: { type, idempotencyKey: `${type}/probe-${probes++}` } });
        return false;
      },
      { what: 'the subscription to go live', timeoutMs: 20_000 },
    );
    await gql(PublishEvent, { input: { type, idempotencyKey: `${type}/shipped` } });
    await waitFor(() => keys().includes(`${type}/shipped`), { what: 'the attempt on the other API' });
    const attempt = sub.results.find(
      (r) => r.data?.deliveryAttempted.delivery?.event?.idempotencyKey === `${type}/shipped`,
    )!.data!.deliveryAttempted;
    expect(attempt).toMatchObject({ attempt: 1, status: 'SUCCEEDED', statusCode: 200 });
    expect(receiver.received.some((r) => r.body.includes(type))).toBe(true);

    await sub.stop();
    await client.dispose();
    await receiver.close();
    for (const p of [first, second, worker]) p.child.kill('SIGTERM');
    expect(await Promise.all([first.exit, second.exit, worker.exit])).toEqual([0, 0, 0]);
  });
});
