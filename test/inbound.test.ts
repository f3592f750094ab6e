import { sign } from '@octokit/webhooks-methods';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modes, newEventType, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import {
  InboundRequestDetail,
  inboundLog,
  InboundRequests,
  post,
  requestNodeId,
  sourceOf,
  UpdateInboundSource,
} from './support/inbound.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';
import { graphql } from './gql/index.ts';

const Deliveries = graphql(`
  query InboundDeliveries($filter: DeliveryFilter) {
    deliveries(first: 10, filter: $filter) {
      edges {
        node {
          id
          status
        }
      }
    }
  }
`);

describe.each(modes)('incoming webhooks (%s)', (mode) => {
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

  const requests = (sourceId: string) => inboundLog(h.gql, sourceId);

  it('verifies a GitHub delivery, keeps it, and routes it to an outgoing webhook', async () => {
    const type = await newEventType(h.operator, 'GitHub');
    const secret = 'It’s a Secret to Everybody';
    const source = await sourceOf(h.gql, {
      name: 'GitHub',
      status: 'DEPLOYED',
      verification: { preset: 'GITHUB', secret },
      eventType: { fixed: type },
    });
    expect(source.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/in\/[A-Za-z0-9_-]{43}$/);
    await webhookTo(h.gql, `${receiver.url}/gh`, [type]);

    const body = JSON.stringify({ action: 'opened', number: 7, title: 'Grüße' });
    const signature = await sign(secret, body);
    const accepted = await post(source.url, body, {
      'x-hub-signature-256': signature,
      'x-github-delivery': 'gh-delivery-1',
    });
    expect(accepted).toMatchObject({ status: 200, body: { outcome: 'ROUTED' } });

    const delivered = await waitFor(() => receiver.received.find((r) => r.path === '/gh'), {
      what: 'the delivery of the routed event',
    });
    expect(JSON.parse(delivered.body)).toMatchObject({ type, current: { number: 7, title: 'Grüße' } });

    const stored = (await h.gql(InboundRequestDetail, { id: requestNodeId(accepted.body.id!) })).data!
      .inboundRequest!;
    expect(stored).toMatchObject({
      outcome: 'ROUTED',
      verification: 'VERIFIED',
      parseStatus: 'PARSED',
      idempotencyKey: 'gh-delivery-1',
      bodyText: body,
      bodyBytes: Buffer.byteLength(body),
      event: { type, current: { number: 7 } },
    });

    const tampered = await post(source.url, body.replace('7', '8'), {
      'x-hub-signature-256': signature,
      'x-github-delivery': 'gh-delivery-2',
    });
    expect(tampered).toMatchObject({ status: 401, body: { error: { code: 'UNAUTHORIZED' } } });
    const log = await requests(source.id);
    expect(log.map((r) => r.outcome)).toEqual(['UNAUTHORIZED', 'ROUTED']);
    expect(log[0]!.reason).toBeTruthy();

    const deliveries = (await h.gql(Deliveries, { filter: { eventType: type } })).data!.deliveries.edges;
    expect(deliveries).toHaveLength(1);
  });

  it('answers every refusal with its status and logs it with its reason', async () => {
    const type = await newEventType(h.operator, 'Refusals');
    const source = await sourceOf(h.gql, {
      name: 'Refusals',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
      maxBytes: 2048,
      requestsPerSecond: 3,
    });
    expect((await post(source.url, '{}', {}, 'PUT')).status).toBe(405);
    expect((await post(source.url, 'x'.repeat(2049))).status).toBe(413);
    expect((await post(source.url, '<a/>', { 'content-type': 'application/xml' })).status).toBe(415);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) statuses.push((await post(source.url, '{}')).status);
    expect(statuses).toContain(429);
    expect((await post(`${source.url}x`, '{}')).status).toBe(404);

    const log = await requests(source.id);
    const outcomes = new Set(log.map((r) => r.outcome));
    for (const outcome of ['METHOD_NOT_ALLOWED', 'TOO_LARGE', 'UNSUPPORTED_MEDIA_TYPE', 'RATE_LIMITED']) {
      expect(outcomes).toContain(outcome);
    }
    expect(log.every((r) => r.reason !== null || r.outcome === 'ROUTED')).toBe(true);

    const inactive = (await h.gql(UpdateInboundSource, { input: { id: source.id, status: 'INACTIVE' } }))
      .data!.updateInboundSource;
    expect(inactive.__typename).toBe('InboundSourcePayload');
    expect((await post(source.url, '{}')).status).toBe(404);
  });

  it('logs a flood over the rate once a second, counting what it did not log', async () => {
    const type = await newEventType(h.operator, 'Flood');
    const source = await sourceOf(h.gql, {
      name: 'Flood',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
      requestsPerSecond: 1,
    });
    const flood = async () =>
      (await Promise.all(Array.from({ length: 40 }, () => post(source.url, '{}')))).filter(
        (a) => a.status === 429,
      );
    const refused = await flood();
    expect(refused.length).toBeGreaterThanOrEqual(30);
    const logged = refused.filter((a) => a.body.id !== null);
    expect(logged.length).toBeLessThanOrEqual(2);
    expect(refused.every((a) => a.body.error?.code === 'RATE_LIMITED')).toBe(true);

    let counted: string | undefined;
    await waitFor(
      async () => {
        await flood();
        counted = (await requests(source.id)).find((r) => / more since the entry before/.test(r.reason ?? ''))
          ?.reason as string | undefined;
        return counted !== undefined;
      },
      { what: 'an entry counting the unlogged refusals', timeoutMs: 10_000 },
    );
    const unlogged = Number(/; (\d+) more/.exec(counted!)![1]);
    expect(unlogged).toBeGreaterThan(0);
  });

  it('lets one of 50 concurrent copies of a delivery through', async () => {
    const type = await newEventType(h.operator, 'Storm');
    const source = await sourceOf(h.gql, {
      name: 'Storm',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
      idempotency: { header: 'x-delivery-id' },
      requestsPerSecond: 1000,
    });
    const answers = await Promise.all(
      Array.from({ length: 50 }, () => post(source.url, '{"n":1}', { 'x-delivery-id': 'same' })),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const log = await requests(source.id);
    expect(log.filter((r) => r.outcome === 'ROUTED')).toHaveLength(1);
    expect(log.filter((r) => r.outcome === 'DUPLICATE')).toHaveLength(49);
    const routed = log.find((r) => r.outcome === 'ROUTED')!;
    expect(log.filter((r) => r.outcome === 'DUPLICATE').every((r) => r.eventId === routed.eventId)).toBe(
      true,
    );
  });

  it('deduplicates a delivery id too long to keep, by its digest', async () => {
    const type = await newEventType(h.operator, 'Long ids');
    const source = await sourceOf(h.gql, {
      name: 'Long ids',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
      idempotency: { header: 'x-delivery-id' },
    });
    const id = 'd'.repeat(300);
    const first = await post(source.url, '{}', { 'x-delivery-id': id });
    const second = await post(source.url, '{}', { 'x-delivery-id': id });
    const other = await post(source.url, '{}', { 'x-delivery-id': `${id}x` });
    expect([first, second, other].map((a) => a.body.outcome)).toEqual(['ROUTED', 'DUPLICATE', 'ROUTED']);
    const [latest] = await requests(source.id);
    expect(latest!.idempotencyKey).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("keeps another tenant's sources and requests out of reach", async () => {
    const other = await h.tenant('Other');
    const type = await newEventType(h.operator, 'Isolation');
    const source = await sourceOf(h.gql, {
      name: 'Mine',
      status: 'DRAFT',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
    });
    const recorded = await post(source.url, '{"a":1}');
    expect(recorded).toMatchObject({ status: 200, body: { outcome: 'RECORDED' } });
    expect(
      (await other.gql(InboundRequestDetail, { id: requestNodeId(recorded.body.id!) })).data!.inboundRequest,
    ).toBeNull();
    const theirs = (await other.gql(InboundRequests, { filter: { sourceId: source.id } })).data!
      .inboundRequests;
    expect(theirs.edges).toEqual([]);
    const update = (await other.gql(UpdateInboundSource, { input: { id: source.id, name: 'Taken' } })).data!
      .updateInboundSource;
    expect(update.__typename).toBe('NotFoundError');
  });
});
