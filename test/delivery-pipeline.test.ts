import { Webhook } from 'standardwebhooks';
import { randomUUID } from 'node:crypto';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { encode, eventMessageV1, streams, subjects } from '../src/bus/contracts.ts';
import { graphql } from './gql/index.ts';
import {
  httpExecutor,
  modes,
  newEventType,
  publishOrFail,
  rawId,
  startTestApp,
  webhookTo,
  type TestApp,
} from './support/app.ts';
import { AuditLogs, CreateApiToken, CreateWebhook } from './support/operations.ts';
import { startReceiver, toLocalReceivers, type Reply } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const Deliveries = graphql(`
  query Deliveries($filter: DeliveryFilter, $first: Int) {
    deliveries(filter: $filter, first: $first) {
      edges {
        node {
          id
          status
          attempts
          eventType
          lastStatusCode
          event {
            id
          }
          webhook {
            id
            isActive
          }
          attemptLog {
            attempt
            createdAt
            url
            statusCode
            responseTimeMs
            response
            errorClass
          }
        }
      }
    }
  }
`);

const Redeliver = graphql(`
  mutation Redeliver($input: RedeliverInput!) {
    redeliver(input: $input) {
      __typename
      ... on DeliveryPayload {
        delivery {
          id
          status
        }
      }
    }
  }
`);

const Replay = graphql(`
  mutation Replay($input: ReplayDeliveriesInput!) {
    replayDeliveries(input: $input) {
      __typename
      ... on ReplayDeliveriesPayload {
        queued
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

const SendTest = graphql(`
  mutation SendTest($input: SendTestEventInput!) {
    sendTestEvent(input: $input) {
      __typename
      ... on DeliveryPayload {
        delivery {
          id
          eventType
        }
      }
    }
  }
`);

const Rotate = graphql(`
  mutation Rotate($input: RotateWebhookSecretInput!) {
    rotateWebhookSecret(input: $input) {
      __typename
      ... on RotateWebhookSecretPayload {
        secret
      }
    }
  }
`);

const ok: Reply = (_req, res) => res.writeHead(204).end();

describe.each(modes)('the delivery pipeline (%s mode)', (mode) => {
  let h: TestApp;
  const receivers: Awaited<ReturnType<typeof startReceiver>>[] = [];

  beforeAll(async () => {
    h = await startTestApp(mode, {
      env: {
        ...toLocalReceivers,
        HERALD_RETRY_SCHEDULE_MS: '0,100,200',
        // Endpoints here fail on purpose: a short pause once the breaker opens.
        HERALD_CIRCUIT_OPEN_MS: '100',
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  /** A receiver, an event type and a webhook for it. */
  async function endpoint(reply: Reply = ok) {
    const receiver = await startReceiver(reply);
    receivers.push(receiver);
    const type = await newEventType(h.operator, 'Pipeline');
    return { receiver, type, ...(await webhookTo(h.gql, `${receiver.url}/in`, [type])) };
  }
  const publish = (type: string, current: unknown = { n: 1 }) => publishOrFail(h.gql, { type, current });
  const deliveriesOf = async (webhookId: string) =>
    (await h.gql(Deliveries, { filter: { webhookId }, first: 100 })).data!.deliveries.edges.map(
      (e) => e.node,
    );

  it('delivers a signed POST, retrying failures with one stable webhook-id', async () => {
    const { receiver, type, webhookId, secret } = await endpoint();
    let calls = 0;
    receiver.reply((_r, res) => res.writeHead(++calls < 3 ? 500 : 200).end(calls < 3 ? 'not yet' : 'ok'));
    const event = await publish(type, { id: 42, total: 99.5 });
    await waitFor(() => receiver.received.length >= 3, { what: 'three attempts' });

    const last = receiver.received.at(-1)!;
    const body = new Webhook(secret).verify(last.body, last.headers as Record<string, string>);
    expect(body).toEqual({
      id: rawId(event.id),
      type,
      timestamp: event.occurredAt,
      tenantId: rawId(h.tenantId),
      meta: { module: type.split('.')[0], model: 'invoice', action: 'paid' },
      current: { id: 42, total: 99.5 },
      previous: null,
    });
    expect(last.headers['content-type']).toBe('application/json');
    expect(new Set(receiver.received.map((r) => r.headers['webhook-id'])).size).toBe(1);

    const [delivery] = await waitFor(
      async () => {
        const list = await deliveriesOf(webhookId);
        return list[0]?.status === 'SUCCEEDED' && list;
      },
      { what: 'the delivery to succeed' },
    );
    expect(delivery).toMatchObject({ attempts: 3, lastStatusCode: 200, event: { id: event.id } });
    expect(delivery!.attemptLog.map((a) => [a.attempt, a.statusCode, a.response])).toEqual([
      [1, 500, 'not yet'],
      [2, 500, 'not yet'],
      [3, 200, 'ok'],
    ]);
    expect(delivery!.attemptLog[0]!.url).toBe(`${receiver.url}/in`);
  });

  it('signs with both secrets during a rotation', async () => {
    const { receiver, type, webhookId, secret } = await endpoint();
    const rotated = (await h.gql(Rotate, { input: { id: webhookId } })).data!.rotateWebhookSecret;
    if (rotated.__typename !== 'RotateWebhookSecretPayload') throw new Error('rotation failed');
    await publish(type);
    await waitFor(() => receiver.received.length >= 1, { what: 'the delivery' });
    const [request] = receiver.received;
    expect(String(request!.headers['webhook-signature']).split(' ')).toHaveLength(2);
    for (const key of [secret, rotated.secret]) {
      expect(
        new Webhook(key).verify(request!.body, request!.headers as Record<string, string>),
      ).toMatchObject({ type });
    }
  });

  it('gives up after the schedule, keeping every attempt', async () => {
    const { receiver, type, webhookId } = await endpoint((_r, res) => res.writeHead(503).end('down'));
    await publish(type);
    const [delivery] = await waitFor(
      async () => {
        const list = await deliveriesOf(webhookId);
        return list[0]?.status === 'FAILED' && list;
      },
      { what: 'the delivery to fail' },
    );
    expect(delivery!.attempts).toBe(3);
    expect(delivery!.attemptLog.map((a) => a.statusCode)).toEqual([503, 503, 503]);
    expect(receiver.received).toHaveLength(3);
  });

  it('keeps a response with NUL bytes, without them', async () => {
    const { type, webhookId } = await endpoint((_r, res) => res.writeHead(200).end('a\u0000b'));
    await publish(type);
    const [delivery] = await waitFor(
      async () => {
        const list = await deliveriesOf(webhookId);
        return list[0]?.status === 'SUCCEEDED' && list;
      },
      { what: 'the delivery' },
    );
    expect(delivery!.attemptLog).toMatchObject([{ attempt: 1, statusCode: 200, response: 'ab' }]);
  });

  it('waits as long as Retry-After asks on 429', async () => {
    const { receiver, type } = await endpoint();
    let calls = 0;
    receiver.reply((_r, res) =>
      ++calls === 1 ? res.writeHead(429, { 'retry-after': '1' }).end() : res.writeHead(200).end(),
    );
    await publish(type);
    await waitFor(() => receiver.received.length >= 2, { what: 'the retry' });
    // The schedule alone would retry after 100 ms.
    expect(receiver.received[1]!.at - receiver.received[0]!.at).toBeGreaterThanOrEqual(900);
  });

  it('disables a webhook whose endpoint answers 410, as the system, and sends it nothing more', async () => {
    const { receiver, type, webhookId } = await endpoint((_r, res) => res.writeHead(410).end());
    await publish(type);
    const [delivery] = await waitFor(
      async () => {
        const list = await deliveriesOf(webhookId);
        return list[0]?.status === 'FAILED' && list;
      },
      { what: 'the 410' },
    );
    expect(delivery).toMatchObject({ attempts: 1, webhook: { isActive: false } });
    if (mode === 'production') {
      // The worker announced the change: every other worker drops the webhook from its cache.
      const disabledAt = new Date(delivery!.attemptLog[0]!.createdAt);
      const nc = await connect({ servers: inject('natsUrl') });
      const jsm = await jetstreamManager(nc);
      const announced = await waitFor(
        async () => {
          const last = await jsm.streams.getMessage(`${h.natsPrefix.toUpperCase()}_CONTROL`, {
            last_by_subj: `${h.natsPrefix}.control.webhooks.${rawId(h.tenantId)}`,
          });
          return last && last.time >= disabledAt && last;
        },
        { what: 'the disable to be announced' },
      );
      await nc.close();
      expect(announced!.json()).toEqual({ v: 1, tenantId: rawId(h.tenantId) });
    }
    const audit = (
      await h.gql(AuditLogs, {
        filter: { actions: ['webhook.disabled'], relationId: rawId(webhookId), relationName: 'Webhook' },
      })
    ).data!.auditLogs.edges.map((e) => e.node);
    expect(audit).toMatchObject([
      { executor: { type: 'system' }, metadata: { changes: { isActive: { before: true, after: false } } } },
    ]);

    // A second webhook on the same type proves the later event was dispatched.
    const probe = await startReceiver(ok);
    receivers.push(probe);
    const probeHook = (
      await h.gql(CreateWebhook, { input: { url: `${probe.url}/in`, subscribedEvents: [type] } })
    ).data!.createWebhook;
    expect(probeHook.__typename).toBe('CreateWebhookPayload');
    const later = await publish(type);
    await waitFor(() => probe.received.some((r) => r.body.includes(rawId(later.id))), {
      what: 'the later event at the second webhook',
    });
    expect(receiver.received).toHaveLength(1);
    expect((await deliveriesOf(webhookId)).map((d) => d.event?.id)).not.toContain(later.id);
  });

  it('redelivers, replays a time range and sends test events, audited', async () => {
    const { receiver, type, webhookId } = await endpoint((_r, res) => res.writeHead(500).end());
    const since = new Date(Date.now() - 1_000).toISOString();
    await publish(type);
    await publish(type);
    await waitFor(
      async () => (await deliveriesOf(webhookId)).filter((d) => d.status === 'FAILED').length === 2,
      {
        what: 'two failed deliveries',
      },
    );
    receiver.reply(ok);

    const [first] = await deliveriesOf(webhookId);
    const redelivered = (await h.gql(Redeliver, { input: { deliveryId: first!.id } })).data!.redeliver;
    expect(redelivered).toMatchObject({ __typename: 'DeliveryPayload', delivery: { status: 'RETRYING' } });
    await waitFor(async () => (await deliveriesOf(webhookId)).some((d) => d.status === 'SUCCEEDED'), {
      what: 'the redelivery',
    });

    const replay = (await h.gql(Replay, { input: { webhookId, since, onlyFailed: true } })).data!
      .replayDeliveries;
    expect(replay).toEqual({ __typename: 'ReplayDeliveriesPayload', queued: 1 });
    await waitFor(async () => (await deliveriesOf(webhookId)).every((d) => d.status === 'SUCCEEDED'), {
      what: 'the replay',
    });
    const backwards = (await h.gql(Replay, { input: { webhookId, since, until: '2000-01-01T00:00:00Z' } }))
      .data!.replayDeliveries;
    expect(backwards).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'until'] }],
    });

    const other = await endpoint();
    const test = (await h.gql(SendTest, { input: { webhookId } })).data!.sendTestEvent;
    expect(test).toMatchObject({ __typename: 'DeliveryPayload', delivery: { eventType: type } });
    await waitFor(() => receiver.received.some((r) => r.body.includes('"test":true')), {
      what: 'the test event',
    });
    expect(other.receiver.received).toHaveLength(0);

    const actions = (await h.gql(AuditLogs, { first: 20 })).data!.auditLogs.edges.map((e) => e.node.action);
    expect(actions).toEqual(
      expect.arrayContaining(['delivery.redelivered', 'deliveries.replayed', 'webhook.test_sent']),
    );
  });

  it('filters the delivery log and hides it from other tenants', async () => {
    const { type, webhookId } = await endpoint();
    await publish(type);
    await waitFor(async () => (await deliveriesOf(webhookId)).some((d) => d.status === 'SUCCEEDED'), {
      what: 'the delivery',
    });
    const byType = (await h.gql(Deliveries, { filter: { eventType: type } })).data!.deliveries.edges;
    expect(byType.map((e) => e.node.eventType)).toEqual([type]);
    const failedOnly = (await h.gql(Deliveries, { filter: { webhookId, statuses: ['FAILED'] } })).data!
      .deliveries.edges;
    expect(failedOnly).toEqual([]);
    const future = (
      await h.gql(Deliveries, { filter: { webhookId, from: new Date(Date.now() + 60_000).toISOString() } })
    ).data!.deliveries.edges;
    expect(future).toEqual([]);

    const other = await h.tenant('Other');
    expect((await other.gql(Deliveries, { filter: { webhookId } })).data!.deliveries.edges).toEqual([]);
    const id = (await deliveriesOf(webhookId))[0]!.id;
    expect((await other.gql(Redeliver, { input: { deliveryId: id } })).data!.redeliver.__typename).toBe(
      'NotFoundError',
    );
  });

  it.runIf(mode === 'production')(
    'drops a host-published event whose subject names another tenant than its body',
    async () => {
      const { receiver, type, webhookId } = await endpoint();
      const other = await h.tenant('Subject');
      const nc = await connect({ servers: inject('natsUrl') });
      const js = jetstream(nc);
      const on = subjects(h.natsPrefix);
      const body = (key: string) => ({
        v: 1 as const,
        id: randomUUID(),
        tenantId: rawId(h.tenantId),
        type,
        meta: { module: type.split('.')[0]!, model: 'invoice', action: 'paid' },
        current: { key },
        previous: null,
        occurredAt: new Date().toISOString(),
        idempotencyKey: key,
      });
      const spoofed = body('spoofed');
      const genuine = body('genuine');
      await js.publish(on.event(rawId(other.tenantId), type), encode(eventMessageV1, spoofed));
      await js.publish(on.event(rawId(h.tenantId), type), encode(eventMessageV1, genuine));
      const jsm = await jetstreamManager(nc);
      await waitFor(
        async () => {
          const info = await jsm.consumers.info(streams(h.natsPrefix).events.name, 'dispatcher');
          return receiver.received.length > 0 && info.num_pending === 0 && info.num_ack_pending === 0;
        },
        { what: 'both events dispatched' },
      );
      await nc.close();
      expect(receiver.received.map((r) => (JSON.parse(r.body) as { id: string }).id)).toEqual([genuine.id]);
      expect(await deliveriesOf(webhookId)).toHaveLength(1);
    },
  );

  it("shows a delivery's webhook and event only to tokens that may read them", async () => {
    const { type, webhookId } = await endpoint();
    await publish(type);
    await waitFor(async () => (await deliveriesOf(webhookId)).some((d) => d.status === 'SUCCEEDED'), {
      what: 'the delivery',
    });
    const created = (
      await h.gql(CreateApiToken, { input: { name: 'log reader', scopes: ['deliveries:read'] } })
    ).data!.createApiToken;
    if (created.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    const reader = httpExecutor(h.url, created.token);

    const seen = await reader(Deliveries, { filter: { webhookId } });
    expect(seen.data!.deliveries.edges.map((e) => [e.node.status, e.node.webhook, e.node.event])).toEqual([
      ['SUCCEEDED', null, null],
    ]);
    expect(seen.errors?.map((e) => [e.extensions?.code, e.path?.at(-1)]).sort()).toEqual([
      ['FORBIDDEN', 'event'],
      ['FORBIDDEN', 'webhook'],
    ]);
    const full = (await h.gql(Deliveries, { filter: { webhookId } })).data!.deliveries.edges[0]!.node;
    expect(full.webhook?.id).toBe(webhookId);
    expect(full.event).not.toBeNull();
  });
});
