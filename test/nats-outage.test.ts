import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { graphql } from './gql/index.ts';
import {
  collect,
  liveEvents,
  publishOrFail,
  rawId,
  startTestApp,
  uniqueType,
  webhookTo,
  type TestApp,
} from './support/app.ts';
import { privateNatsServer } from './support/nats-server.ts';
import { CreateApiToken, PublishEvent, UpsertEventType } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const OutageAttempts = graphql(`
  subscription OutageAttempts($webhookId: ID) {
    deliveryAttempted(webhookId: $webhookId) {
      deliveryId
      attempt
      status
    }
  }
`);

describe('when NATS goes away', () => {
  let nats: Awaited<ReturnType<typeof privateNatsServer>>;
  let h: TestApp;

  beforeAll(async () => {
    nats = await privateNatsServer();
    h = await startTestApp('production', { env: { NATS_URL: nats.url, ...toLocalReceivers } });
  });
  afterAll(async () => {
    await h?.stop();
    await nats?.dispose();
  });

  const count = async (sql: string, params: unknown[] = []) => {
    const db = new pg.Client({ connectionString: h.databaseUrl });
    await db.connect();
    try {
      const { rows } = await db.query<{ n: number }>(sql, params);
      return rows[0]!.n;
    } finally {
      await db.end();
    }
  };
  /** Outbox entries: all of them, or the event's. */
  const outboxEntries = (eventId?: string) =>
    count('select count(*)::int as n from event_outbox where $1::uuid is null or event_id = $1', [
      eventId ?? null,
    ]);

  const readiness = async () => {
    const response = await fetch(`${h.url}/readyz`);
    return { status: response.status, body: (await response.json()) as Record<string, string> };
  };

  it('reports not ready, keeps accepting events, and recovers without a restart', async () => {
    const type = uniqueType();
    const added = await h.operator(UpsertEventType, { input: { name: type, group: 'Outage' } });
    expect(added.data?.upsertEventType.__typename).toBe('UpsertEventTypePayload');
    const publish = async (key: string) =>
      (await h.gql(PublishEvent, { input: { type, idempotencyKey: `${type}/${key}` } })).data!.publishEvent;
    const sub = await liveEvents(h.ws(), h.gql, [type]);

    await nats.stop();
    const down = await waitFor(
      async () => {
        const r = await readiness();
        return r.status === 503 && r;
      },
      { what: '/readyz to fail' },
    );
    expect(down.body).toEqual({ status: 'unavailable', database: 'ok', bus: 'unavailable' });

    // Accepted while the bus is down: stored, and published by the outbox relays once it is back.
    const during = await publish('during');
    if (during.__typename !== 'PublishEventPayload') throw new Error(during.__typename);
    expect(await outboxEntries(rawId(during.event.id))).toBe(1);
    const token = (
      await h.gql(CreateApiToken, { input: { name: 'made during the outage', scopes: ['events:read'] } })
    ).data!.createApiToken;
    expect(token.__typename).toBe('CreateApiTokenPayload');

    await nats.start();
    await waitFor(async () => (await readiness()).status === 200, {
      timeoutMs: 20_000,
      what: '/readyz to recover',
    });
    await publish('after');
    await waitFor(() => sub.keys().includes(`${type}/during`) && sub.keys().includes(`${type}/after`), {
      timeoutMs: 20_000,
      what: 'the events published during and after the outage',
    });
    await sub.stop();
    expect(sub.keys().filter((k) => k === `${type}/during`)).toHaveLength(1);
    // Relayed and published alike, the stream has them: the outbox empties.
    await waitFor(async () => (await outboxEntries()) === 0, { what: 'the outbox to empty' });

    // The audit entry of the token made during the outage is in the stream too, exactly once.
    const nc = await connect({ servers: nats.url });
    const stream = await jetstream(nc).consumers.get(`${h.natsPrefix.toUpperCase()}_AUDIT`, {
      filter_subjects: `${h.natsPrefix}.audit.${rawId(h.tenantId)}`,
    });
    const names: string[] = [];
    await waitFor(
      async () => {
        const batch = await stream.fetch({ max_messages: 100, expires: 1_000 });
        for await (const message of batch)
          names.push(message.json<{ related: { name: string } | null }>().related?.name ?? '');
        return names.includes('made during the outage');
      },
      { timeoutMs: 20_000, what: 'the audit entry on the bus' },
    );
    // Read the rest of the stream too: a repeat would come after the first copy.
    for await (const message of await stream.fetch({ max_messages: 100, expires: 1_000 })) {
      names.push(message.json<{ related: { name: string } | null }>().related?.name ?? '');
    }
    await nc.close();
    expect(names.filter((name) => name === 'made during the outage')).toHaveLength(1);
  });

  it('announces an attempt recorded while it was away once it is back, once', async () => {
    const type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'Outage' } });
    let release = () => {};
    const receiver = await startReceiver((_request, res) => res.writeHead(200).end('ok'));
    const { webhookId } = await webhookTo(h.gql, receiver.url, [type]);
    const sub = collect(h.ws(), OutageAttempts, { webhookId });
    const attempts = () => sub.results.map((r) => r.data?.deliveryAttempted);
    // Probes until one is announced: from then on the subscription is live.
    let probes = 0;
    await waitFor(
      async () => {
        if (attempts().length > 0) return true;
        await publishOrFail(h.gql, { type, idempotencyKey: `${type}/probe-${probes++}` });
        return false;
      },
      { timeoutMs: 20_000, what: 'the subscription to go live' },
    );
    await waitFor(() => receiver.received.length === probes && attempts().length === probes, {
      what: 'every probe announced',
    });

    // The receiver holds the next request until NATS is down; the attempt is recorded meanwhile.
    receiver.reply((_request, res) =>
      new Promise<void>((resolve) => {
        release = resolve;
      }).then(() => res.writeHead(200).end('ok')),
    );
    const event = await publishOrFail(h.gql, { type, idempotencyKey: `${type}/during` });
    await waitFor(() => receiver.received.length === probes + 1, { what: 'the held request' });
    await nats.stop();
    release();
    receiver.reply((_request, res) => res.writeHead(200).end('ok'));
    const recorded = () =>
      count(
        `select count(*)::int as n from delivery_attempts a join deliveries d on d.id = a.delivery_id
         join attempt_outbox o on o.attempt_id = a.id where d.event_id = $1`,
        [rawId(event.id)],
      );
    await waitFor(async () => (await recorded()) === 1, {
      timeoutMs: 20_000,
      what: 'the attempt stored with its outbox entry',
    });

    await nats.start();
    await waitFor(() => attempts().length === probes + 1, {
      timeoutMs: 30_000,
      what: 'the attempt announced after the outage',
    });
    await waitFor(async () => (await count('select count(*)::int as n from attempt_outbox')) === 0, {
      timeoutMs: 20_000,
      what: 'the attempt outbox to empty',
    });
    // A probe published now arrives after any repeat of the announcement would have.
    await publishOrFail(h.gql, { type, idempotencyKey: `${type}/after` });
    await waitFor(() => attempts().length >= probes + 2, { timeoutMs: 20_000, what: 'the last probe' });
    await sub.stop();
    await receiver.close();
    const deliveries = attempts().map((a) => a?.deliveryId);
    expect(new Set(deliveries).size).toBe(deliveries.length);
    expect(attempts().filter((a) => a?.status !== 'SUCCEEDED' || a.attempt !== 1)).toEqual([]);
  });
});
