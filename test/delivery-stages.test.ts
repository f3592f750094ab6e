import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { newEventType, publishOrFail, rawId, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import { recordingLogger } from './support/logs.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const Deliveries = graphql(`
  query StageDeliveries($filter: DeliveryFilter) {
    deliveries(filter: $filter, first: 10) {
      edges {
        node {
          status
        }
      }
    }
  }
`);

/** A step of the pipeline that fails is logged with its stage, and its work comes back. */
describe('a delivery attempt whose database read times out', () => {
  const logs = recordingLogger();
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  beforeAll(async () => {
    receiver = await startReceiver();
    h = await startTestApp('production', {
      env: { ...toLocalReceivers, DATABASE_STATEMENT_TIMEOUT_MS: '300' },
      logger: logs.logger,
    });
  });
  afterAll(async () => {
    await h?.stop();
    await receiver?.close();
  });

  it('is logged as failed at prepare, retried, and delivered once the database answers', async () => {
    const type = await newEventType(h.operator, 'Stages');
    await webhookTo(h.gql, `${receiver.url}/in`, [type]);
    // A first delivery: the dispatcher caches the tenant's webhooks, so the next dispatch reads none.
    await publishOrFail(h.gql, { type, idempotencyKey: 'warm' });
    await waitFor(
      async () => {
        const { edges } = (await h.gql(Deliveries, { filter: { statuses: ['SUCCEEDED'] } })).data!.deliveries;
        return edges.length === 1;
      },
      { what: 'the first delivery to be recorded' },
    );

    // Loading an attempt reads the webhook: with the table locked it waits past its timeout.
    const holder = new pg.Client({ connectionString: h.databaseUrl });
    await holder.connect();
    const failedAtPrepare = () =>
      logs.lines.filter(
        (l) => l.stage === 'prepare' && l.msg === 'a delivery attempt failed at prepare; retrying',
      );
    try {
      await holder.query('begin');
      await holder.query('lock table webhooks in access exclusive mode');
      const event = await publishOrFail(h.gql, { type, idempotencyKey: 'during' });
      await waitFor(() => failedAtPrepare().length > 0, { what: 'the failure to be logged' });
      const [line] = failedAtPrepare();
      expect(line).toMatchObject({ level: 40, attempt: 1, deliveryCount: 1, retryInMs: 250 });
      expect(line!.err?.message).toMatch(/did not answer within 300 ms/);
      await holder.query('commit');
      await waitFor(
        () => receiver.received.some((r) => (JSON.parse(r.body) as { id: string }).id === rawId(event.id)),
        {
          what: 'the delivery once the database answers',
        },
      );
    } finally {
      await holder.end();
    }
  });
});
