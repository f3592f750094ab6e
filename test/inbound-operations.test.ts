import { createHmac } from 'node:crypto';
import { sign } from '@octokit/webhooks-methods';
import Stripe from 'stripe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { collect, modes, newEventType, rawId, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import {
  CreateInboundSource,
  InboundRequestDetail,
  inboundLog,
  InboundRequests,
  post,
  requestNodeId,
  sourceOf,
  UpdateInboundSource,
} from './support/inbound.ts';
import { AuditLogs, CreateApiToken, NodeById, UpsertEventType } from './support/operations.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const RotateUrl = graphql(`
  mutation RotateInboundSourceUrl($input: RotateInboundSourceUrlInput!) {
    rotateInboundSourceUrl(input: $input) {
      __typename
      ... on InboundSourcePayload {
        source {
          url
          previousUrlExpiresAt
        }
      }
    }
  }
`);

const DeleteSource = graphql(`
  mutation DeleteInboundSource($input: DeleteInboundSourceInput!) {
    deleteInboundSource(input: $input) {
      __typename
    }
  }
`);

const Replay = graphql(`
  mutation ReplayInboundRequests($input: ReplayInboundRequestsInput!) {
    replayInboundRequests(input: $input) {
      __typename
      ... on ReplayInboundRequestsPayload {
        replayed
        items {
          original {
            id
          }
          outcome
          reason
          eventType
          request {
            id
            outcome
            eventId
            replayOf {
              id
            }
          }
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

const Received = graphql(`
  subscription InboundReceived($sourceId: ID, $after: String) {
    inboundRequestReceived(sourceId: $sourceId, after: $after) {
      id
      outcome
      bodyText
      streamCursor
    }
  }
`);

const SourcesWithoutUrl = graphql(`
  query InboundSourcesList($filter: InboundSourceFilter, $first: Int) {
    inboundSources(first: $first, filter: $filter) {
      edges {
        node {
          id
          name
          status
        }
      }
    }
  }
`);

const stripe = new Stripe('sk_test_herald');

describe.each(modes)('inbound operations (%s)', (mode) => {
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

  const log = (sourceId: string) => inboundLog(h.gql, sourceId);
  const githubSource = async (secret: string) =>
    sourceOf(h.gql, {
      name: 'GitHub',
      status: 'DEPLOYED',
      verification: { preset: 'GITHUB', secret },
      eventType: { fixed: await newEventType(h.operator, 'GitHub') },
    });
  const signed = async (secret: string, body: string, delivery: string) => ({
    'x-hub-signature-256': await sign(secret, body),
    'x-github-delivery': delivery,
  });

  it("makes Flowtly's Stripe receiver in one mutation, routing by Stripe's own type", async () => {
    const type = `stripe_${Date.now().toString(36)}.paid`;
    await h.operator(UpsertEventType, { input: { name: type, group: 'Stripe' } });
    const secret = 'whsec_flowtly_test';
    const source = await sourceOf(h.gql, {
      template: 'FLOWTLY_STRIPE',
      status: 'DEPLOYED',
      verification: { secret },
    });
    expect(source).toMatchObject({ name: 'Stripe', format: 'JSON', verification: { preset: 'STRIPE' } });
    await webhookTo(h.gql, `${receiver.url}/stripe`, [type]);
    const event = JSON.stringify({ id: 'evt_1', object: 'event', type, data: { object: { amount: 990 } } });
    const header = stripe.webhooks.generateTestHeaderString({ payload: event, secret });
    const answer = await post(source.url, event, { 'stripe-signature': header });
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'ROUTED' } });
    const delivered = await waitFor(() => receiver.received.find((r) => r.path === '/stripe'), {
      what: 'the Stripe event',
    });
    expect(JSON.parse(delivered.body) as unknown).toMatchObject({ type, current: { id: 'evt_1' } });
    // Stripe retries with the same event id: one event only.
    expect((await post(source.url, event, { 'stripe-signature': header })).body.outcome).toBe('DUPLICATE');

    const unknown = JSON.stringify({ id: 'evt_2', type: 'charge.refunded' });
    const kept = await post(source.url, unknown, {
      'stripe-signature': stripe.webhooks.generateTestHeaderString({ payload: unknown, secret }),
    });
    expect(kept.body.outcome).toBe('UNROUTABLE');
    expect(
      (await h.gql(InboundRequestDetail, { id: requestNodeId(kept.body.id!) })).data!.inboundRequest!.reason,
    ).toMatch(/unknown event type "charge.refunded"/);

    const missing = (
      await h.gql(CreateInboundSource, {
        input: { template: 'FLOWTLY_E_INVOICE_STATUS', verification: { secret: 'flowtly:pw' } },
      })
    ).data!.createInboundSource;
    // The e-invoice types are the operator's to add to the catalog first.
    expect(missing).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'eventType', 'fixed'] }],
    });
  });

  it('rotates a secret with a grace period, and without one', async () => {
    const source = await githubSource('first-secret');
    const body = '{"n":1}';
    const rotate = (secret: string, secretGraceSeconds: number) =>
      h.gql(UpdateInboundSource, { input: { id: source.id, verification: { secret }, secretGraceSeconds } });
    const rotated = (await rotate('second-secret', 3600)).data!.updateInboundSource;
    expect(rotated).toMatchObject({ source: { verification: { liveSecrets: 2 } } });
    expect((await post(source.url, body, await signed('first-secret', body, 'a'))).status).toBe(200);
    expect((await post(source.url, body, await signed('second-secret', body, 'b'))).status).toBe(200);
    await rotate('third-secret', 0);
    expect((await post(source.url, body, await signed('second-secret', body, 'c'))).status).toBe(401);
    expect((await post(source.url, body, await signed('third-secret', body, 'd'))).status).toBe(200);

    const entries = (
      await h.gql(AuditLogs, { filter: { relationName: 'InboundSource', relationId: rawId(source.id) } })
    ).data!.auditLogs.edges.map((e) => e.node);
    expect(entries.map((e) => e.action)).toEqual([
      'inbound_source.updated',
      'inbound_source.updated',
      'inbound_source.created',
    ]);
    const text = JSON.stringify(entries);
    for (const secret of ['first-secret', 'second-secret', 'third-secret'])
      expect(text).not.toContain(secret);
    expect(text).toContain('[redacted]');
  });

  it('refuses bad changes with typed errors and changes nothing', async () => {
    const source = await githubSource('secret');
    const refused = async (input: Record<string, unknown>) =>
      (await h.gql(UpdateInboundSource, { input: { id: source.id, ...input } as never })).data!
        .updateInboundSource;
    expect(await refused({ name: null })).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'name'] }],
    });
    expect(await refused({ maxBytes: 10 * 1024 * 1024 })).toMatchObject({
      fields: [
        { path: ['input', 'maxBytes'], message: expect.stringMatching(/HERALD_INBOUND_MAX_BYTES/) as string },
      ],
    });
    expect(await refused({ eventType: { fixed: 'nothing.such' } })).toMatchObject({
      fields: [{ path: ['input', 'eventType', 'fixed'] }],
    });
    expect(
      await refused({
        verification: { preset: 'HMAC', secret: 'k'.repeat(129), hmac: { header: 'x-signature' } },
      }),
    ).toMatchObject({ fields: [{ path: ['input', 'verification', 'secret'] }] });
    expect(await refused({ allowedCidrs: ['10.0.0.0/33'] })).toMatchObject({ __typename: 'ValidationError' });
    const body = '{}';
    expect((await post(source.url, body, await signed('secret', body, 'still'))).body.outcome).toBe('ROUTED');
  });

  it('moves senders to a new URL with a grace period, and deletes at once', async () => {
    const source = await sourceOf(h.gql, {
      name: 'Moving',
      status: 'DRAFT',
      verification: { preset: 'NONE' },
      eventType: { fixed: await newEventType(h.operator, 'Moving') },
    });
    const moved = (await h.gql(RotateUrl, { input: { id: source.id, graceSeconds: 3600 } })).data!
      .rotateInboundSourceUrl;
    if (moved.__typename !== 'InboundSourcePayload') throw new Error(moved.__typename);
    expect(moved.source.url).not.toBe(source.url);
    expect(moved.source.previousUrlExpiresAt).toBeTruthy();
    expect((await post(source.url, '{}')).status).toBe(200);
    expect((await post(moved.source.url, '{}')).status).toBe(200);
    const again = (await h.gql(RotateUrl, { input: { id: source.id, graceSeconds: 0 } })).data!
      .rotateInboundSourceUrl;
    if (again.__typename !== 'InboundSourcePayload') throw new Error(again.__typename);
    expect((await post(moved.source.url, '{}')).status).toBe(404);
    expect((await post(again.source.url, '{}')).status).toBe(200);
    expect(
      (await h.gql(DeleteSource, { input: { id: source.id } })).data!.deleteInboundSource.__typename,
    ).toBe('InboundSourcePayload');
    expect((await post(again.source.url, '{}')).status).toBe(404);
  });

  it('replays stored requests: verified ones, refused ones only re-verified, dry runs storing nothing', async () => {
    const source = await githubSource('replay-secret');
    const body = '{"order":1}';
    const good = await post(source.url, body, await signed('replay-secret', body, 'r1'));
    const forged = await post(source.url, body, await signed('wrong', body, 'r2'));
    expect([good.status, forged.status]).toEqual([200, 401]);
    const ids = [requestNodeId(good.body.id!), requestNodeId(forged.body.id!)];
    const repeat = await post(source.url, body, await signed('replay-secret', body, 'r1'));
    expect(repeat.body.outcome).toBe('DUPLICATE');
    const once = (
      await h.gql(Replay, {
        input: { ids: [ids[0]!, ids[0]!, requestNodeId(repeat.body.id!)], dryRun: true },
      })
    ).data!.replayInboundRequests;
    expect(once).toMatchObject({
      items: [
        { outcome: 'ROUTED' },
        { outcome: 'SKIPPED', reason: expect.stringMatching(/repeat of an earlier request/) as string },
      ],
    });

    const dry = (await h.gql(Replay, { input: { ids, dryRun: true } })).data!.replayInboundRequests;
    expect(dry).toMatchObject({
      replayed: 0,
      items: [
        { outcome: 'ROUTED', request: null },
        { outcome: 'SKIPPED', reason: expect.stringMatching(/reverify/) as string },
      ],
    });
    expect(await log(source.id)).toHaveLength(3);

    const replayed = (await h.gql(Replay, { input: { ids } })).data!.replayInboundRequests;
    if (replayed.__typename !== 'ReplayInboundRequestsPayload') throw new Error(replayed.__typename);
    expect(replayed.replayed).toBe(1);
    const replay = replayed.items[0]!.request!;
    expect(replay).toMatchObject({ outcome: 'ROUTED', replayOf: { id: ids[0] } });
    const original = (await h.gql(InboundRequestDetail, { id: ids[0]! })).data!.inboundRequest!;
    expect(replay.eventId).not.toBe(original.eventId);

    const reverified = (await h.gql(Replay, { input: { sourceId: source.id, reverify: true } })).data!
      .replayInboundRequests;
    // The range holds the two originals (replays and the sender's repeat are not replayed): the
    // forged one fails again.
    expect(reverified).toMatchObject({ replayed: 1 });

    const entries = (await h.gql(AuditLogs, { filter: { actions: ['inbound_request.replayed'] } })).data!
      .auditLogs.edges;
    expect(entries.length).toBeGreaterThanOrEqual(2);
  });

  it('streams requests live, accepted and refused, and resumes from a cursor', async () => {
    const source = await githubSource('live-secret');
    const sub = collect(h.ws(), Received, { sourceId: source.id });
    const body = '{"live":true}';
    await waitFor(
      async () => {
        if (sub.results.length > 0) return true;
        await post(source.url, body, await signed('live-secret', body, `probe-${Date.now()}`));
        return false;
      },
      { what: 'the live tail to start' },
    );
    await post(source.url, body, await signed('nope', body, 'refused'));
    const seen = await waitFor(
      () => sub.results.find((r) => r.data?.inboundRequestReceived.outcome === 'UNAUTHORIZED'),
      { what: 'the refused request live' },
    );
    expect(seen.data!.inboundRequestReceived.bodyText).toBe(body);
    await sub.stop();

    const cursor = seen.data!.inboundRequestReceived.streamCursor!;
    const missed = await post(source.url, body, await signed('live-secret', body, 'missed'));
    const resumed = collect(h.ws(), Received, { sourceId: source.id, after: cursor });
    await waitFor(
      () => resumed.results.some((r) => r.data?.inboundRequestReceived.id === requestNodeId(missed.body.id!)),
      {
        what: 'the missed request replayed',
      },
    );
    expect(resumed.results[0]!.data!.inboundRequestReceived.id).toBe(requestNodeId(missed.body.id!));
    await resumed.stop();
  });

  it('gates sources by scope and keeps them within their tenant', async () => {
    const source = await githubSource('scoped');
    const token = async (scopes: string[]) => {
      const created = (
        await h.gql(CreateApiToken, { input: { name: scopes.join(' '), scopes: scopes as never } })
      ).data!.createApiToken;
      if (created.__typename !== 'CreateApiTokenPayload') throw new Error(created.__typename);
      return created.token;
    };
    const eventsOnly = await token(['events:read']);
    const listed = await h.gql(SourcesWithoutUrl, {}, { token: eventsOnly });
    expect(listed.errors?.[0]?.message).toMatch(/inbound:read/);
    const reader = await token(['inbound:read']);
    const read = await h.gql(CreateInboundSource, { input: { name: 'x' } }, { token: reader });
    expect(read.errors?.[0]?.message).toMatch(/inbound:manage/);
    const urls = await h.gql(InboundRequests, { filter: { sourceId: source.id } }, { token: reader });
    expect(urls.errors).toBeUndefined();
    const other = await h.tenant('Elsewhere');
    expect((await other.gql(NodeById, { id: source.id })).data!.node).toBeNull();
    expect((await h.gql(NodeById, { id: source.id })).data!.node).toMatchObject({
      __typename: 'InboundSource',
    });
  });

  it('refuses senders outside the allowed networks', async () => {
    const source = await sourceOf(h.gql, {
      name: 'Networks',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: await newEventType(h.operator, 'Networks') },
      allowedCidrs: ['203.0.113.0/24'],
    });
    expect((await post(source.url, '{}')).status).toBe(403);
    await h.gql(UpdateInboundSource, { input: { id: source.id, allowedCidrs: ['127.0.0.0/8', '::1/128'] } });
    expect((await post(source.url, '{}')).status).toBe(200);
    expect((await log(source.id)).map((r) => r.outcome)).toEqual(['ROUTED', 'FORBIDDEN']);
  });

  it('signs custom HMAC content with a timestamp, as Patchworks-style senders do', async () => {
    const type = await newEventType(h.operator, 'HMAC');
    const source = await sourceOf(h.gql, {
      name: 'Custom',
      status: 'DEPLOYED',
      verification: {
        preset: 'HMAC',
        secret: 'k'.repeat(128),
        hmac: {
          algorithm: 'SHA512',
          encoding: 'BASE64',
          header: 'X-Sig',
          signedContent: '{timestamp}.{body}',
          timestampHeader: 'X-Ts',
        },
      },
      eventType: { fixed: type },
    });
    const body = '{"flow":"orders"}';
    const at = (seconds: number) => {
      const ts = String(seconds);
      const mac = createHmac('sha512', 'k'.repeat(128)).update(`${ts}.${body}`).digest('base64');
      return { 'x-sig': mac, 'x-ts': ts };
    };
    const now = Math.floor(Date.now() / 1000);
    expect((await post(source.url, body, at(now))).status).toBe(200);
    expect((await post(source.url, body, at(now - 3600))).status).toBe(401);
    const [stale] = await log(source.id);
    expect(stale!.reason).toMatch(/tolerance 300 s/);

    // A merge patch of one setting keeps the others (algorithm, encoding, the timestamp).
    const moved = (
      await h.gql(UpdateInboundSource, {
        input: { id: source.id, verification: { hmac: { header: 'X-Sig-2' } } },
      })
    ).data!.updateInboundSource;
    expect(moved.__typename).toBe('InboundSourcePayload');
    const { 'x-sig': mac, 'x-ts': ts } = at(now);
    expect((await post(source.url, body, { 'x-sig-2': mac, 'x-ts': ts })).status).toBe(200);
  });
});
