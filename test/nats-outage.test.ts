import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { collect, startTestApp, uniqueType, type TestApp } from './support/app.ts';
import { privateNatsServer } from './support/nats-server.ts';
import { waitFor } from './support/wait.ts';

const AddType = graphql(`
  mutation AddType($input: UpsertEventTypeInput!) {
    upsertEventType(input: $input) {
      __typename
    }
  }
`);

const Publish = graphql(`
  mutation Publish($input: PublishEventInput!) {
    publishEvent(input: $input) {
      __typename
      ... on PublishEventPayload {
        event {
          id
        }
      }
    }
  }
`);

const Watch = graphql(`
  subscription Watch($types: [String!]) {
    eventPublished(types: $types) {
      id
      idempotencyKey
    }
  }
`);

describe('when NATS goes away', () => {
  let nats: Awaited<ReturnType<typeof privateNatsServer>>;
  let h: TestApp;

  beforeAll(async () => {
    nats = await privateNatsServer();
    h = await startTestApp('production', { env: { NATS_URL: nats.url } });
  });
  afterAll(async () => {
    await h?.stop();
    await nats?.dispose();
  });

  const readiness = async () => {
    const response = await fetch(`${h.url}/readyz`);
    return { status: response.status, body: (await response.json()) as { status: string; error?: string } };
  };

  it('reports not ready, keeps accepting events, and recovers without a restart', async () => {
    const type = uniqueType();
    expect(
      (await h.gql(AddType, { input: { name: type, group: 'Outage' } })).data?.upsertEventType.__typename,
    ).toBe('UpsertEventTypePayload');
    const publish = async (key: string) =>
      (await h.gql(Publish, { input: { type, idempotencyKey: key } })).data!;
    const sub = collect(h.ws(), Watch, { types: [type] });
    let probe = 0;
    await waitFor(async () => sub.results.length > 0 || void (await publish(`${type}/probe-${probe++}`)), {
      what: 'the subscription to go live',
    });

    await nats.stop();
    const down = await waitFor(
      async () => {
        const r = await readiness();
        return r.status === 503 && r;
      },
      { what: '/readyz to fail' },
    );
    expect(down.body.error).toMatch(/NATS/);

    // Accepted while the bus is down: stored, and published by the outbox relay once it is back.
    const during = await publish(`${type}/during`);
    expect(during.publishEvent.__typename).toBe('PublishEventPayload');

    await nats.start();
    await waitFor(async () => (await readiness()).status === 200, {
      timeoutMs: 20_000,
      what: '/readyz to recover',
    });
    await publish(`${type}/after`);
    const keys = () => sub.results.map((r) => r.data?.eventPublished.idempotencyKey);
    await waitFor(() => keys().includes(`${type}/during`) && keys().includes(`${type}/after`), {
      timeoutMs: 20_000,
      what: 'the events published during and after the outage',
    });
    await sub.stop();
    expect(keys().filter((k) => k === `${type}/during`)).toHaveLength(1);
  });
});
