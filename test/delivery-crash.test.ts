import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { rawId, startTestApp, uniqueType, type TestApp } from './support/app.ts';
import { CreateWebhook, PublishEvent, UpsertEventType } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const Unsettled = graphql(`
  query Unsettled($filter: DeliveryFilter) {
    deliveries(filter: $filter, first: 100) {
      edges {
        node {
          id
          status
        }
      }
    }
  }
`);

const EVENTS = 100;

describe('a worker killed in the middle of a batch', () => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const workers: ChildProcess[] = [];
  const env: Record<string, string> = {
    ...toLocalReceivers,
    HERALD_REQUEST_TIMEOUT_MS: '1000',
  };

  /** A worker process on the app's database and streams. */
  function startWorker() {
    const child = spawn(
      process.execPath,
      [fileURLToPath(new URL('../src/main/worker.ts', import.meta.url))],
      {
        env: {
          PATH: process.env.PATH,
          ...env,
          DATABASE_URL: h.databaseUrl!,
          NATS_URL: inject('natsUrl'),
          HERALD_NATS_PREFIX: h.natsPrefix,
          HERALD_SECRET_KEY: inject('secretKey'),
          HERALD_ADMIN_TOKEN: h.operatorToken,
          LOG_LEVEL: 'warn',
        },
        stdio: 'ignore',
      },
    );
    workers.push(child);
    return child;
  }

  beforeAll(async () => {
    // Slow enough that the kill lands while attempts are in flight.
    receiver = await startReceiver((_req, res) => void setTimeout(() => res.writeHead(200).end(), 20));
    h = await startTestApp('production', { env, roles: { api: true, worker: false } });
  });
  afterAll(async () => {
    for (const worker of workers) worker.kill('SIGKILL');
    await h?.stop();
    await receiver?.close();
  });

  it(
    'loses nothing: every delivery completes after a restart, repeats carry the same webhook-id',
    { timeout: 120_000 },
    async () => {
      const type = uniqueType();
      await h.operator(UpsertEventType, { input: { name: type, group: 'Crash' } });
      const created = (
        await h.gql(CreateWebhook, { input: { url: `${receiver.url}/in`, subscribedEvents: [type] } })
      ).data!.createWebhook;
      if (created.__typename !== 'CreateWebhookPayload') throw new Error(JSON.stringify(created));

      const first = startWorker();
      for (let i = 0; i < EVENTS; i++) await h.gql(PublishEvent, { input: { type, current: { i } } });
      const ids = () => new Set(receiver.received.map((r) => String(r.headers['webhook-id'])));
      await waitFor(() => ids().size >= 20, { timeoutMs: 30_000, what: 'the first worker to be busy' });
      const exited = new Promise((resolve) => first.once('exit', resolve));
      first.kill('SIGKILL');
      await exited;
      expect(ids().size).toBeLessThan(EVENTS);

      const second = startWorker();
      await waitFor(() => ids().size === EVENTS, { timeoutMs: 60_000, what: 'every event to arrive' });
      await waitFor(
        async () =>
          (
            await h.gql(Unsettled, {
              filter: { webhookId: created.webhook.id, statuses: ['PENDING', 'RETRYING', 'FAILED'] },
            })
          ).data!.deliveries.edges.length === 0,
        { timeoutMs: 30_000, what: 'every delivery to be recorded as succeeded' },
      );
      const delivered = (await h.gql(Unsettled, { filter: { webhookId: created.webhook.id } })).data!
        .deliveries.edges;
      expect(delivered).toHaveLength(EVENTS);
      // A repeat is the same delivery again: its webhook-id is one of the deliveries' ids.
      const deliveryIds = new Set(delivered.map((e) => rawId(e.node.id)));
      expect([...ids()].every((id) => deliveryIds.has(id))).toBe(true);
      expect(receiver.received.length).toBeGreaterThanOrEqual(EVENTS);

      const stopped = new Promise((resolve) => second.once('exit', resolve));
      second.kill('SIGTERM');
      expect(await stopped).toBe(0);
    },
  );
});
