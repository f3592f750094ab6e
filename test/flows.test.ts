import { createHmac, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import type { CreateFlowInput, CreateFlowWebhookInput } from './gql/graphql.ts';
import { modes, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import { InboundRequestDetail, inboundLog, post, requestNodeId } from './support/inbound.ts';
import { AuditLogs, UpsertEventType } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const CreateFlow = graphql(`
  mutation CreateFlow($input: CreateFlowInput!) {
    createFlow(input: $input) {
      __typename
      ... on FlowPayload {
        flow {
          ...FlowFields
        }
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

const UpdateFlow = graphql(`
  mutation UpdateFlow($input: UpdateFlowInput!) {
    updateFlow(input: $input) {
      __typename
      ... on FlowPayload {
        flow {
          ...FlowFields
        }
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

const DeployFlow = graphql(`
  mutation DeployFlow($input: DeployFlowInput!) {
    deployFlow(input: $input) {
      __typename
      ... on FlowPayload {
        flow {
          ...FlowFields
        }
      }
    }
  }
`);

const DeleteFlow = graphql(`
  mutation DeleteFlow($input: DeleteFlowInput!) {
    deleteFlow(input: $input) {
      __typename
    }
  }
`);

const Flows = graphql(`
  query Flows($first: Int, $after: String, $filter: FlowFilter) {
    flows(first: $first, after: $after, filter: $filter) {
      edges {
        node {
          ...FlowFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const CreateFlowWebhook = graphql(`
  mutation CreateFlowWebhook($input: CreateFlowWebhookInput!) {
    createFlowWebhook(input: $input) {
      __typename
      ... on FlowWebhookPayload {
        webhook {
          ...FlowWebhookFields
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const UpdateFlowWebhook = graphql(`
  mutation UpdateFlowWebhook($input: UpdateFlowWebhookInput!) {
    updateFlowWebhook(input: $input) {
      __typename
      ... on FlowWebhookPayload {
        webhook {
          ...FlowWebhookFields
        }
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

const DeleteFlowWebhook = graphql(`
  mutation DeleteFlowWebhook($input: DeleteFlowWebhookInput!) {
    deleteFlowWebhook(input: $input) {
      __typename
    }
  }
`);

const FlowWebhooks = graphql(`
  query FlowWebhooks($flowId: ID!, $first: Int, $after: String) {
    flowWebhooks(flowId: $flowId, first: $first, after: $after) {
      edges {
        node {
          ...FlowWebhookFields
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

const TestFlow = graphql(`
  query TestFlow($input: TestFlowInput!) {
    testFlow(input: $input) {
      __typename
      ... on TestFlowPayload {
        outcome
        outcomeNow
        reason
        deployed
        verification {
          status
          detail
        }
        parseStatus
        parseError
        parsed
        filter {
          matched
          detail
        }
        event {
          type
          module
          model
          action
          current
        }
      }
      ... on ValidationError {
        fields {
          path
          message
        }
      }
      ... on NotFoundError {
        message
      }
    }
  }
`);

const EventsOfTypes = graphql(`
  query EventsOfTypes($filter: EventFilter) {
    events(first: 10, filter: $filter) {
      edges {
        node {
          id
        }
      }
    }
  }
`);

describe.each(modes)('flows (%s)', (mode) => {
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

  /** Event types of one module of this test's own: `<module>.<model>.<action>` for each action. */
  async function catalog(model: string, actions: string[]): Promise<string[]> {
    const module = `f${randomBytes(4).toString('hex')}`;
    const types = actions.map((action) => `${module}.${model}.${action}`);
    for (const name of types) await h.operator(UpsertEventType, { input: { name, group: 'Flows' } });
    return types;
  }

  async function flowOf(input: CreateFlowInput) {
    const created = (await h.gql(CreateFlow, { input })).data!.createFlow;
    if (created.__typename !== 'FlowPayload') throw new Error(JSON.stringify(created));
    return created.flow;
  }

  async function webhookOf(input: CreateFlowWebhookInput) {
    const created = (await h.gql(CreateFlowWebhook, { input })).data!.createFlowWebhook;
    if (created.__typename !== 'FlowWebhookPayload') throw new Error(JSON.stringify(created));
    return created.webhook;
  }

  const delivered = (path: string) =>
    waitFor(() => receiver.received.find((r) => r.path === path), { what: `a delivery to ${path}` });

  it('creates, lists, updates, deploys and deletes flows, each change audited', async () => {
    const [type] = await catalog('order', ['created']);
    const flow = await flowOf({ name: 'Orders in', eventType: { fixed: type } });
    expect(flow).toMatchObject({ status: 'DRAFT', deployedAt: null, webhooksCount: 0, filter: null });
    await webhookOf({ flowId: flow.id });
    await webhookOf({ flowId: flow.id, format: 'csv' });

    const other = await flowOf({ name: 'Returns', status: 'INACTIVE', eventType: { fixed: type } });
    const firstPage = (await h.gql(Flows, { first: 1 })).data!.flows;
    expect(firstPage.edges.map((e) => e.node.id)).toEqual([other.id]);
    expect(firstPage.pageInfo.hasNextPage).toBe(true);
    const next = (await h.gql(Flows, { first: 1, after: firstPage.pageInfo.endCursor })).data!.flows;
    expect(next.edges[0]!.node).toMatchObject({ id: flow.id, webhooksCount: 2 });
    const inactive = (await h.gql(Flows, { filter: { status: 'INACTIVE' } })).data!.flows.edges;
    expect(inactive.map((e) => e.node.id)).toContain(other.id);
    expect(inactive.map((e) => e.node.id)).not.toContain(flow.id);
    const searched = (await h.gql(Flows, { filter: { search: 'orders' } })).data!.flows.edges;
    expect(searched.map((e) => e.node.id)).toEqual([flow.id]);

    const updated = (await h.gql(UpdateFlow, { input: { id: flow.id, description: 'From the shop' } })).data!
      .updateFlow;
    expect(updated).toMatchObject({
      flow: { name: 'Orders in', description: 'From the shop', status: 'DRAFT' },
    });
    const deployed = (await h.gql(DeployFlow, { input: { id: flow.id } })).data!.deployFlow;
    if (deployed.__typename !== 'FlowPayload') throw new Error(deployed.__typename);
    expect(deployed.flow.status).toBe('DEPLOYED');
    expect(Date.now() - Date.parse(deployed.flow.deployedAt as string)).toBeLessThan(60_000);

    expect((await h.gql(DeleteFlow, { input: { id: flow.id } })).data!.deleteFlow.__typename).toBe(
      'FlowPayload',
    );
    expect((await h.gql(FlowWebhooks, { flowId: flow.id })).data!.flowWebhooks.edges).toEqual([]);

    const entries = (
      await h.gql(AuditLogs, {
        filter: {
          actions: [
            'flow.created',
            'flow.updated',
            'flow.deployed',
            'flow.deleted',
            'inbound_source.deleted',
          ],
        },
      })
    ).data!.auditLogs.edges.map((e) => e.node);
    const webhooksGone = entries.filter(
      (entry) => entry.action === 'inbound_source.deleted' && entry.related?.name === 'Orders in: webhook',
    );
    expect(webhooksGone).toHaveLength(2);
    const mine = entries.filter((entry) => entry.related?.name === 'Orders in').map((entry) => entry.action);
    expect(mine.sort()).toEqual(['flow.created', 'flow.deleted', 'flow.deployed', 'flow.updated']);
  });

  it("validates flows and their webhooks by the reference's rules, a ValidationError per field", async () => {
    const [type] = await catalog('order', ['created']);
    const badFlow = (
      await h.gql(CreateFlow, {
        input: {
          name: 'Bad',
          eventType: { fixed: 'nowhere.to.be' },
          filter: {
            all: [
              { field: 'body.total', gt: 'ten' },
              { field: 'cookies', eq: 1 },
            ],
          },
          mapping: { current: { id: 'order.id' }, meta: { action: { value: 'Shipped!' } } },
        },
      })
    ).data!.createFlow;
    expect(badFlow.__typename).toBe('ValidationError');
    const paths = badFlow.__typename === 'ValidationError' ? badFlow.fields.map((f) => f.path.join('.')) : [];
    expect(paths.sort()).toEqual(
      [
        'input.eventType.fixed',
        'input.filter.all.0.gt',
        'input.filter.all.1.field',
        'input.mapping.current.id',
        'input.mapping.meta.action.value',
      ].sort(),
    );

    const unmapped = (
      await h.gql(CreateFlow, {
        input: {
          name: 'Unmapped',
          eventType: { fixed: type },
          mapping: { meta: { action: { value: 'paid' } } },
        },
      })
    ).data!.createFlow;
    expect(unmapped).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'mapping', 'meta'] }],
    });

    const flow = await flowOf({ name: 'Validated', eventType: { fixed: type } });
    const remapped = (
      await h.gql(UpdateFlow, { input: { id: flow.id, mapping: { meta: { model: { value: 'refund' } } } } })
    ).data!.updateFlow;
    expect(remapped).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'mapping', 'meta'] }],
    });
    const refused = async (input: Omit<CreateFlowWebhookInput, 'flowId'>) => {
      const result = (await h.gql(CreateFlowWebhook, { input: { flowId: flow.id, ...input } })).data!
        .createFlowWebhook;
      return result.__typename === 'ValidationError' ? result.fields.map((f) => f.path.join('.')) : result;
    };
    expect(await refused({ format: 'yaml' })).toEqual(['input.format']);
    expect(await refused({ hmacAlgorithm: 'sha256', hmacSecretKey: 'k'.repeat(129) })).toEqual([
      'input.hmacSecretKey',
    ]);
    expect(await refused({ hmacAlgorithm: 'md5', hmacSecretKey: 'key' })).toEqual(['input.hmacAlgorithm']);
    expect(await refused({ hmacAlgorithm: 'sha512' })).toEqual(['input.hmacSecretKey']);
    expect(await refused({ status: 'DEPLOYED', hmacHeader: 'not a header' })).toEqual(['input.hmacHeader']);
    expect(await refused({ hmacHeader: 'x-sig', hmacEncoding: 'BASE64' })).toEqual(['input.hmacSecretKey']);
    expect((await h.gql(FlowWebhooks, { flowId: flow.id })).data!.flowWebhooks.edges).toEqual([]);

    const webhook = await webhookOf({
      flowId: flow.id,
      format: 'XML',
      body: '<order/>',
      hmacAlgorithm: 'SHA1',
      hmacSecretKey: 'k'.repeat(128),
    });
    expect(webhook).toMatchObject({
      format: 'XML',
      body: '<order/>',
      hmacAlgorithm: 'SHA1',
      hmacHeader: 'x-signature',
      hasHmacSecretKey: true,
      flowId: flow.id,
      source: { flow: { id: flow.id } },
    });
    const nullName = (await h.gql(UpdateFlowWebhook, { input: { id: webhook.id, format: null } })).data!
      .updateFlowWebhook;
    expect(nullName).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'format'] }],
    });
  });

  it('routes a request only when its webhook and its flow are both DEPLOYED', async () => {
    const [type] = await catalog('order', ['created']);
    await webhookTo(h.gql, `${receiver.url}/statuses`, [type!]);
    const flow = await flowOf({ name: 'Statuses', eventType: { fixed: type } });
    const webhook = await webhookOf({ flowId: flow.id, status: 'DEPLOYED' });
    const send = () => post(webhook.url, '{"id":1}');

    expect(await send()).toMatchObject({ status: 200, body: { outcome: 'RECORDED' } });
    await h.gql(DeployFlow, { input: { id: flow.id } });
    expect(await send()).toMatchObject({ status: 200, body: { outcome: 'ROUTED' } });
    await delivered('/statuses');

    await h.gql(UpdateFlowWebhook, { input: { id: webhook.id, status: 'DRAFT' } });
    expect(await send()).toMatchObject({ status: 200, body: { outcome: 'RECORDED' } });
    await h.gql(UpdateFlowWebhook, { input: { id: webhook.id, status: 'DEPLOYED' } });
    await h.gql(UpdateFlow, { input: { id: flow.id, status: 'INACTIVE' } });
    expect(await send()).toMatchObject({ status: 404 });
    await h.gql(UpdateFlow, { input: { id: flow.id, status: 'DEPLOYED' } });
    await h.gql(UpdateFlowWebhook, { input: { id: webhook.id, status: 'INACTIVE' } });
    expect(await send()).toMatchObject({ status: 404 });

    const log = await inboundLog(h.gql, webhook.id);
    expect(log.map((r) => [r.outcome, r.reason])).toEqual([
      ['NOT_FOUND', 'the webhook is INACTIVE'],
      ['NOT_FOUND', 'the flow is INACTIVE'],
      ['RECORDED', 'the webhook is DRAFT: recorded, not routed'],
      ['ROUTED', null],
      ['RECORDED', 'the flow is DRAFT: recorded, not routed'],
    ]);
  });

  it('verifies a signed flow webhook, and rotates its key with a grace period', async () => {
    const [type] = await catalog('order', ['created']);
    const flow = await flowOf({ name: 'Signed', status: 'DEPLOYED', eventType: { fixed: type } });
    const webhook = await webhookOf({
      flowId: flow.id,
      status: 'DEPLOYED',
      hmacAlgorithm: 'sha512',
      hmacSecretKey: 'first key',
      hmacHeader: 'X-Patchworks-Signature',
    });
    const body = '{"id":7}';
    const signed = (key: string) => ({
      'x-patchworks-signature': createHmac('sha512', key).update(body).digest('hex'),
    });
    expect((await post(webhook.url, body, signed('first key'))).status).toBe(200);
    expect((await post(webhook.url, body, signed('wrong key'))).status).toBe(401);
    expect((await post(webhook.url, body)).status).toBe(401);

    const rotated = (
      await h.gql(UpdateFlowWebhook, { input: { id: webhook.id, hmacSecretKey: 'second key' } })
    ).data!.updateFlowWebhook;
    expect(rotated).toMatchObject({
      webhook: { hmacAlgorithm: 'SHA512', hmacHeader: 'x-patchworks-signature' },
    });
    expect((await post(webhook.url, body, signed('second key'))).status).toBe(200);
    expect((await post(webhook.url, body, signed('first key'))).status).toBe(200);

    const unsigned = (await h.gql(UpdateFlowWebhook, { input: { id: webhook.id, hmacAlgorithm: null } }))
      .data!.updateFlowWebhook;
    expect(unsigned).toMatchObject({ webhook: { hmacAlgorithm: null, hasHmacSecretKey: false } });
    expect((await post(webhook.url, body)).status).toBe(200);
  });

  const formats = [
    {
      format: 'json',
      contentType: 'application/json',
      at: 'body.',
      pass: '{"id":"A1","total":150,"state":"shipped"}',
      fail: '{"id":"A9","total":50,"state":"shipped"}',
      expected: { type: 'shipped', current: { orderId: 'A1', amount: 150, shop: 'eu-west', missing: null } },
    },
    {
      format: 'csv',
      contentType: 'text/csv',
      at: 'body[0].',
      pass: 'id,total,state,country\nA2,120.50,created,PL\n',
      fail: 'id,total,state,country\nA9,120.50,created,PL\nA8,1,created,PL\n',
      failHeaders: { 'x-test': 'yes' },
      expected: { type: 'created', current: { orderId: 'A2', amount: '120.50', shop: null, missing: null } },
    },
    {
      format: 'xml',
      contentType: 'application/xml',
      at: 'body.order.',
      pass: '<order><id>A3</id><total>100</total><state>shipped</state></order>',
      fail: '<order><id>A9</id><total>100</total><state>shipped</state><test/></order>',
      expected: {
        type: 'shipped',
        current: { orderId: 'A3', amount: '100', shop: 'eu-west', missing: null },
      },
    },
  ];

  it.each(formats)(
    'filters and maps a $format body, and testFlow shows what a real request then becomes',
    async ({ format, contentType, at, pass, fail, failHeaders, expected }) => {
      const [created, shipped] = await catalog('order', ['created', 'shipped']);
      await webhookTo(h.gql, `${receiver.url}/mapped-${format}`, [created!, shipped!]);
      const flow = await flowOf({
        name: `Mapped ${format}`,
        status: 'DEPLOYED',
        eventType: { fixed: created },
        filter: {
          all: [
            { field: `${at}total`, gte: 100 },
            {
              any: [
                { field: 'header.x-shop', prefix: 'eu-' },
                { field: `${at}country`, in: ['PL', 'DE'] },
              ],
            },
            {
              not: {
                any: [
                  { field: `${at}test`, exists: true },
                  { field: 'header.x-test', exists: true },
                ],
              },
            },
          ],
        },
        mapping: {
          current: {
            orderId: `${at}id`,
            amount: `${at}total`,
            shop: 'header.x-shop',
            missing: `${at}nothing`,
          },
          meta: { action: { field: `${at}state` } },
        },
      });
      const webhook = await webhookOf({ flowId: flow.id, status: 'DEPLOYED', format });
      const headers = { 'content-type': contentType, ...(format !== 'csv' && { 'x-shop': 'eu-west' }) };
      const test = async (body: string, extra: Record<string, string> = {}) => {
        const input = { flowId: flow.id, webhookId: webhook.id, body, headers: { ...headers, ...extra } };
        const result = (await h.gql(TestFlow, { input })).data!.testFlow;
        if (result.__typename !== 'TestFlowPayload') throw new Error(JSON.stringify(result));
        return result;
      };

      const tested = await test(pass);
      const type = expected.type === 'shipped' ? shipped : created;
      expect(tested).toMatchObject({
        outcome: 'ROUTED',
        deployed: true,
        verification: { status: 'VERIFIED' },
        parseStatus: 'PARSED',
        filter: { matched: true },
        event: { type, action: expected.type, model: 'order', current: expected.current },
      });
      const answer = await post(webhook.url, pass, headers);
      expect(answer).toMatchObject({ status: 200, body: { outcome: 'ROUTED' } });
      const sent = JSON.parse((await delivered(`/mapped-${format}`)).body) as {
        type: string;
        current: unknown;
      };
      expect(sent).toMatchObject({ type: tested.event!.type, current: tested.event!.current });
      const stored = (await h.gql(InboundRequestDetail, { id: requestNodeId(answer.body.id!) })).data!
        .inboundRequest!;
      expect(stored.event).toMatchObject({ type, current: expected.current });

      const filtered = await test(fail, failHeaders);
      expect(filtered).toMatchObject({ outcome: 'FILTERED', filter: { matched: false }, event: null });
      const refused = await post(webhook.url, fail, { ...headers, ...failHeaders });
      expect(refused).toMatchObject({ status: 200, body: { outcome: 'FILTERED' } });
      const [entry] = await inboundLog(h.gql, webhook.id);
      expect(entry).toMatchObject({
        outcome: 'FILTERED',
        reason: `filtered out: ${filtered.filter!.detail}`,
      });
    },
  );

  it('testFlow stores nothing, and explains parse failures and unroutable requests', async () => {
    const [type] = await catalog('order', ['created']);
    const flow = await flowOf({
      name: 'Explained',
      eventType: { fixed: type },
      mapping: { meta: { action: { field: 'body.state' } } },
    });
    const test = async (input: { body: string; headers?: Record<string, string> }) => {
      const result = (await h.gql(TestFlow, { input: { flowId: flow.id, ...input } })).data!.testFlow;
      if (result.__typename !== 'TestFlowPayload') throw new Error(JSON.stringify(result));
      return result;
    };
    const headers = { 'content-type': 'application/json' };
    expect(await test({ body: '{"state":"created"}', headers })).toMatchObject({
      outcome: 'ROUTED',
      outcomeNow: 'RECORDED',
      deployed: false,
      verification: { status: 'NOT_CHECKED' },
      event: { type, current: { state: 'created' } },
    });
    expect(await test({ body: '{"state":"lost"}', headers })).toMatchObject({
      outcome: 'UNROUTABLE',
      reason: expect.stringMatching(/lost/) as string,
    });
    expect(await test({ body: '{"state":', headers })).toMatchObject({
      outcome: 'UNROUTABLE',
      parseStatus: 'FAILED',
      parseError: expect.stringMatching(/not valid JSON/) as string,
    });
    expect(await test({ body: '{}', headers: { 'content-type': 'text/csv' } })).toMatchObject({
      outcome: 'UNSUPPORTED_MEDIA_TYPE',
    });
    const both = (await h.gql(TestFlow, { input: { flowId: flow.id, body: '{}', bodyBase64: 'e30=' } })).data!
      .testFlow;
    expect(both).toMatchObject({ __typename: 'ValidationError', fields: [{ path: ['input', 'body'] }] });
    expect((await h.gql(EventsOfTypes, { filter: { types: [type!] } })).data!.events.edges).toEqual([]);
  });

  it("keeps another tenant's flows and webhooks out of reach", async () => {
    const [type] = await catalog('order', ['created']);
    const flow = await flowOf({ name: 'Private flow', eventType: { fixed: type } });
    const webhook = await webhookOf({ flowId: flow.id });
    const other = await h.tenant('Flow stranger');
    expect((await other.gql(Flows, {})).data!.flows.edges).toEqual([]);
    expect((await other.gql(FlowWebhooks, { flowId: flow.id })).data!.flowWebhooks.edges).toEqual([]);
    expect(
      (await other.gql(CreateFlowWebhook, { input: { flowId: flow.id } })).data!.createFlowWebhook,
    ).toMatchObject({ __typename: 'NotFoundError' });
    const update = (await other.gql(UpdateFlow, { input: { id: flow.id, name: 'Taken' } })).data!.updateFlow;
    expect(update.__typename).toBe('NotFoundError');
    const remove = (await other.gql(DeleteFlowWebhook, { input: { id: webhook.id } })).data!
      .deleteFlowWebhook;
    expect(remove.__typename).toBe('NotFoundError');
    const tested = (await other.gql(TestFlow, { input: { flowId: flow.id, body: '{}' } })).data!.testFlow;
    expect(tested.__typename).toBe('NotFoundError');
    const recorded = await post(webhook.url, '{"a":1}');
    expect(recorded.status).toBe(200);
    expect(
      (await other.gql(InboundRequestDetail, { id: requestNodeId(recorded.body.id!) })).data!.inboundRequest,
    ).toBeNull();
  });
});
