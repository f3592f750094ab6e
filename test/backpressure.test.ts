import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { modes, newEventType, publishOrFail, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const QueuedDeliveries = graphql(`
  query QueuedDeliveries {
    deliveries(first: 100) {
      edges {
        node {
          status
          attempts
        }
      }
    }
  }
`);

const BOUND = 10;
const EVENTS = 150;

/**
 * Events arriving faster than the workers deliver: the dispatcher makes deliveries only while the
 * delivery queue holds fewer than its bound, and the rest of the events wait on their stream.
 */
describe.each(modes)('backpressure from the workers to the dispatcher (%s mode)', (mode) => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    // 2 attempts at a time, 100 ms each: about 20 deliveries a second.
    receiver = await startReceiver((_request, res) => setTimeout(() => res.writeHead(204).end(), 100));
    h = await startTestApp(mode, {
      env: {
        ...toLocalReceivers,
        HERALD_MAX_QUEUED_DELIVERIES: String(BOUND),
        HERALD_MAX_IN_FLIGHT_PER_ENDPOINT: '2',
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await receiver?.close();
  });

  it('keeps the deliveries made and not yet attempted within the bound, and delivers every event', async () => {
    const type = await newEventType(h.operator, 'Backpressure');
    await webhookTo(h.gql, `${receiver.url}/in`, [type]);
    const samples: { notAttempted: number; made: number }[] = [];
    let publishing = true;
    const sampling = (async () => {
      while (publishing || receiver.received.length < EVENTS) {
        const { edges } = (await h.gql(QueuedDeliveries, {})).data!.deliveries;
        samples.push({
          notAttempted: edges.filter((e) => e.node.status === 'PENDING' && e.node.attempts === 0).length,
          made: edges.length,
        });
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    })();
    for (let i = 0; i < EVENTS; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => publishOrFail(h.gql, { type, idempotencyKey: `e${i + j}` })),
      );
    }
    const madeWhenPublished = (await h.gql(QueuedDeliveries, {})).data!.deliveries.edges.length;
    const receivedWhenPublished = new Set(receiver.received.map((r) => r.headers['webhook-id'])).size;
    publishing = false;
    await waitFor(() => new Set(receiver.received.map((r) => r.headers['webhook-id'])).size === EVENTS, {
      timeoutMs: 30_000,
      what: 'every event to be delivered',
    });
    await sampling;
    // Every event was accepted at once; those not delivered yet waited on the stream, not as
    // delivery rows: the rows made are those delivered and at most the bound more.
    expect(madeWhenPublished).toBeLessThan(100);
    expect(madeWhenPublished - receivedWhenPublished).toBeLessThanOrEqual(BOUND + 2);
    expect(samples.length).toBeGreaterThan(20);
    expect(Math.max(...samples.map((s) => s.notAttempted))).toBeLessThanOrEqual(BOUND);
    expect(Math.max(...samples.map((s) => s.notAttempted))).toBeGreaterThan(0);
  });
});
