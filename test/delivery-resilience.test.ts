import { afterEach, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { modes, newEventType, rawId, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import { AuditLogs, PublishEvent } from './support/operations.ts';
import { startReceiver, toLocalReceivers, type Reply } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const EnableWebhook = graphql(`
  mutation EnableAgain($input: WebhookIdInput!) {
    enableWebhook(input: $input) {
      __typename
    }
  }
`);

const WebhookState = graphql(`
  query WebhookState($id: ID!) {
    webhook(id: $id) {
      isActive
      disabledReason
      lastFailureAt
      lastSuccessAt
    }
  }
`);

const DeliveryLog = graphql(`
  query DeliveryLog($filter: DeliveryFilter) {
    deliveries(filter: $filter, first: 100) {
      edges {
        node {
          status
          event {
            id
          }
          attemptLog {
            attempt
          }
        }
      }
    }
  }
`);

describe.each(modes)('delivery resilience (%s mode)', (mode) => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function setup(env: Record<string, string>) {
    const h = await startTestApp(mode, { env: { ...toLocalReceivers, ...env } });
    cleanups.push(() => h.stop());
    return h;
  }
  async function endpoint(h: TestApp, type: string, reply: Reply) {
    const receiver = await startReceiver(reply);
    cleanups.push(() => receiver.close());
    return { receiver, ...(await webhookTo(h.gql, `${receiver.url}/in`, [type])) };
  }
  const eventType = (h: TestApp) => newEventType(h.operator, 'Resilience');

  it('disables a webhook that keeps failing past the configured time, as the system', async () => {
    const h = await setup({
      HERALD_AUTO_DISABLE_AFTER_MS: '1000',
      HERALD_RETRY_SCHEDULE_MS: '0,100,100,100,100,100,100,100,100,100,100,100,100,100,100',
      HERALD_CIRCUIT_OPEN_MS: '50',
    });
    const type = await eventType(h);
    const { webhookId } = await endpoint(h, type, (_r, res) => res.writeHead(500).end());
    await h.gql(PublishEvent, { input: { type } });
    const state = await waitFor(
      async () => {
        const webhook = (await h.gql(WebhookState, { id: webhookId })).data!.webhook!;
        return !webhook.isActive && webhook;
      },
      { what: 'the webhook to be disabled' },
    );
    expect(state.disabledReason).toMatch(/failing continuously since/);
    expect(state.lastFailureAt).not.toBeNull();
    const [entry] = (
      await h.gql(AuditLogs, {
        filter: { actions: ['webhook.disabled'], relationName: 'Webhook', relationId: rawId(webhookId) },
      })
    ).data!.auditLogs.edges.map((e) => e.node);
    expect(entry).toMatchObject({ executor: { type: 'system', name: 'herald' } });

    // Enabled again, it starts from a clean slate: one more failure does not disable it at once.
    await h.gql(EnableWebhook, { input: { id: webhookId } });
    await h.gql(PublishEvent, { input: { type } });
    await waitFor(
      async () =>
        (await h.gql(WebhookState, { id: webhookId })).data!.webhook!.lastFailureAt !== state.lastFailureAt,
      {
        what: 'a failure after enabling',
      },
    );
    expect((await h.gql(WebhookState, { id: webhookId })).data!.webhook!.isActive).toBe(true);
  });

  it('prunes attempts, settled deliveries and their events past the retention age', async () => {
    const h = await setup({
      HERALD_RETENTION_MS: '1500',
      HERALD_RETENTION_INTERVAL_MS: '200',
      HERALD_RETRY_SCHEDULE_MS: '0,60000',
    });
    const type = await eventType(h);
    const { webhookId } = await endpoint(h, type, (_r, res) => res.writeHead(200).end());
    const retrying = await endpoint(h, type, (_r, res) => res.writeHead(500).end());
    await h.gql(PublishEvent, { input: { type } });
    const log = async (id: string) =>
      (await h.gql(DeliveryLog, { filter: { webhookId: id } })).data!.deliveries.edges;
    await waitFor(async () => (await log(webhookId))[0]?.node.status === 'SUCCEEDED', {
      what: 'the delivery',
    });
    expect((await log(webhookId))[0]!.node.attemptLog).toHaveLength(1);
    await waitFor(async () => (await log(webhookId)).length === 0, { what: 'the pruning' });
    // The same event's delivery that still has a retry ahead keeps its event and its attempts.
    const [kept] = await log(retrying.webhookId);
    expect(kept!.node).toMatchObject({ status: 'RETRYING', attemptLog: [{ attempt: 1 }] });
    expect(kept!.node.event).not.toBeNull();
  });

  it('keeps healthy endpoints flowing while one hangs', async () => {
    const h = await setup({
      HERALD_DELIVERY_CONCURRENCY: '8',
      HERALD_MAX_IN_FLIGHT_PER_ENDPOINT: '2',
      HERALD_REQUEST_TIMEOUT_MS: '20000',
      HERALD_CIRCUIT_FAILURES: '1000',
    });
    const type = await eventType(h);
    let open = 0;
    let mostOpen = 0;
    const hanging = await endpoint(h, type, (_r, res) => {
      mostOpen = Math.max(mostOpen, ++open);
      res.on('close', () => open--);
    });
    const healthy = await Promise.all(
      [1, 2, 3].map(() => endpoint(h, type, (_r, res) => res.writeHead(200).end())),
    );

    // More deliveries to the hanging endpoint than the consumer may hold unacked (8 × 4).
    const events = 60;
    for (let i = 0; i < events; i++) await h.gql(PublishEvent, { input: { type } });
    await waitFor(() => healthy.every((e) => e.receiver.received.length >= events), {
      what: 'every healthy endpoint to receive every event',
    });
    // Eight slots in all, at most two for the hanging endpoint; and its first two attempts have not
    // even timed out yet (a timeout would have let the next ones in): the others never waited on it.
    expect(mostOpen).toBeLessThanOrEqual(2);
    expect(hanging.receiver.received).toHaveLength(2);
    expect(open).toBe(2);
  });
});
