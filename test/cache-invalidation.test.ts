import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { startApp, type App } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import { startTestApp, uniqueType, type TestApp } from './support/app.ts';
import { CreateWebhook, PublishEvent, UpsertEventType } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

/** The API and a worker as separate apps on one database and one set of streams. */
describe('webhook changes made in the API process', () => {
  const env = {
    ...toLocalReceivers,
    // Ten minutes: only the announcement on the bus can make the worker see a change in time.
    HERALD_WEBHOOK_CACHE_TTL_MS: '600000',
  };
  let api: TestApp;
  let worker: App;
  const receivers: Awaited<ReturnType<typeof startReceiver>>[] = [];

  beforeAll(async () => {
    api = await startTestApp('production', { env, roles: { api: true, worker: false } });
    const config = loadConfig({
      ...env,
      DATABASE_URL: api.databaseUrl,
      NATS_URL: inject('natsUrl'),
      HERALD_NATS_PREFIX: api.natsPrefix,
      HERALD_SECRET_KEY: inject('secretKey'),
      HERALD_ADMIN_TOKEN: api.operatorToken,
      LOG_LEVEL: 'silent',
    });
    worker = await startApp(config, { api: false, worker: true }, createLogger('silent'));
  });
  afterAll(async () => {
    await worker?.stop();
    await api?.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  it('reach the worker’s cache at once', async () => {
    const type = uniqueType();
    await api.operator(UpsertEventType, { input: { name: type, group: 'Cache' } });
    const [first, second] = await Promise.all([startReceiver(), startReceiver()]);
    receivers.push(first, second);
    await api.gql(CreateWebhook, { input: { url: `${first.url}/in`, subscribedEvents: [type] } });
    // The worker now caches the tenant's webhooks: only the first.
    await api.gql(PublishEvent, { input: { type, idempotencyKey: 'one' } });
    await waitFor(() => first.received.length === 1, { what: 'the first delivery' });

    await api.gql(CreateWebhook, { input: { url: `${second.url}/in`, subscribedEvents: [type] } });
    await waitFor(
      async () => {
        // Until the announcement lands, new events miss the second webhook; then one reaches it.
        await api.gql(PublishEvent, { input: { type } });
        return second.received.length > 0;
      },
      { what: 'the second webhook to be seen', timeoutMs: 10_000 },
    );
    expect(second.received.length).toBeGreaterThan(0);
  });
});
