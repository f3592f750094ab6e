import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DeliveryHttpClient } from '../src/deliveries/http-client.ts';
import { startReceiver } from './support/receiver.ts';

describe('the delivery HTTP client, against a real receiver', () => {
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  const allowed = new DeliveryHttpClient(
    { allowHttp: true, allowedCidrs: ['127.0.0.0/8', '::1/128'] },
    { connectTimeoutMs: 1_000, totalTimeoutMs: 1_000, maxResponseBytes: 4_096 },
  );
  const strict = new DeliveryHttpClient({ allowHttp: true, allowedCidrs: [] });

  beforeAll(async () => {
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await Promise.all([allowed.close(), strict.close(), receiver.close()]);
  });

  it('posts JSON with the given headers and records status, headers and body', async () => {
    receiver.reply((_req, res) => res.writeHead(201, { 'x-receiver': 'yes' }).end('thanks'));
    const outcome = await allowed.post(`${receiver.url}/hook`, { 'webhook-id': 'msg_1' }, '{"a":1}');
    expect(outcome).toMatchObject({
      kind: 'response',
      statusCode: 201,
      body: 'thanks',
      headers: { 'x-receiver': 'yes' },
    });
    const last = receiver.received.at(-1)!;
    expect(last).toMatchObject({ path: '/hook', body: '{"a":1}' });
    expect(last.headers).toMatchObject({ 'content-type': 'application/json', 'webhook-id': 'msg_1' });
  });

  it('keeps at most 4 KiB of a response', async () => {
    receiver.reply((_req, res) => res.writeHead(500).end('x'.repeat(100_000)));
    const outcome = await allowed.post(receiver.url, {}, '{}');
    expect(outcome).toMatchObject({ kind: 'response', statusCode: 500 });
    expect(outcome.kind === 'response' && outcome.body.length).toBe(4_096);
  });

  it('does not follow redirects', async () => {
    receiver.reply((_req, res) => res.writeHead(302, { location: 'http://169.254.169.254/' }).end());
    const before = receiver.received.length;
    expect(await allowed.post(receiver.url, {}, '{}')).toMatchObject({ kind: 'response', statusCode: 302 });
    expect(receiver.received.length).toBe(before + 1);
  });

  it('times out a receiver that does not answer', async () => {
    receiver.reply(() => undefined);
    const outcome = await allowed.post(receiver.url, {}, '{}');
    expect(outcome).toMatchObject({ kind: 'error', errorClass: 'timeout' });
    expect(outcome.durationMs).toBeLessThan(5_000);
  });

  it('classifies a refused connection', async () => {
    const closed = await startReceiver();
    await closed.close();
    expect(await allowed.post(closed.url, {}, '{}')).toMatchObject({ kind: 'error', errorClass: 'connect' });
  });

  it('refuses, at connect time, addresses the policy does not allow, however the host is spelled', async () => {
    receiver.reply((_req, res) => res.writeHead(200).end());
    const before = receiver.received.length;
    for (const url of [
      receiver.url,
      `http://localhost:${receiver.port}/`,
      `http://2130706433:${receiver.port}/`,
    ]) {
      expect(await strict.post(url, {}, '{}'), url).toMatchObject({ kind: 'error', errorClass: 'ssrf' });
    }
    expect(receiver.received.length).toBe(before);
    expect(await allowed.post(`http://localhost:${receiver.port}/`, {}, '{}')).toMatchObject({
      statusCode: 200,
    });
  });
});
