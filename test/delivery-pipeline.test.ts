import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modes, startTestApp, uniqueType, type TestApp } from './support/app.ts';
import { CreateWebhook, PublishEvent, UpsertEventType } from './support/operations.ts';
import { startReceiver } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

describe.each(modes)('the delivery pipeline (%s mode)', (mode) => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
    h = await startTestApp(mode, {
      env: {
        HERALD_ALLOWED_CIDRS: '127.0.0.0/8',
        HERALD_ALLOW_HTTP: 'true',
        HERALD_RETRY_SCHEDULE_MS: '0,100,200',
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await receiver?.close();
  });
  it('delivers a signed POST, retrying failures with one stable webhook-id', async () => {
    const type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'x' } });
    const created = (
      await h.gql(CreateWebhook, { input: { url: `${receiver.url}/in`, subscribedEvents: [type] } })
    ).data!.createWebhook;
    if (created.__typename !== 'CreateWebhookPayload') throw new Error(JSON.stringify(created));
    let calls = 0;
    receiver.reply((_r, res) => res.writeHead(++calls < 3 ? 500 : 200).end());
    await h.gql(PublishEvent, { input: { type, current: { a: 1 } } });
    await waitFor(() => receiver.received.length >= 3, { what: 'three attempts' });
    const last = receiver.received.at(-1)!;
    expect(
      new Webhook(created.secret!).verify(last.body, last.headers as Record<string, string>),
    ).toMatchObject({ type, current: { a: 1 } });
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);
  });
});
