import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import {
  collect,
  liveEvents,
  modes,
  rawId,
  startTestApp,
  uniqueType,
  type TenantClient,
  type TestApp,
} from './support/app.ts';
import {
  ApiTokens,
  AuditLogById,
  AuditLogs,
  CreateApiToken,
  EventPublished,
  NodeById,
  PublishEvent,
  RevokeApiToken,
  UpsertEventType,
  VerifyAuditTrail,
  Viewer,
} from './support/operations.ts';
import { waitFor } from './support/wait.ts';

const ResumedEvents = graphql(`
  subscription ResumedEvents($types: [String!], $after: String) {
    eventPublished(types: $types, after: $after) {
      idempotencyKey
      streamCursor
    }
  }
`);

const TenantNode = graphql(`
  query TenantNode($id: ID!) {
    node(id: $id) {
      __typename
      ... on Tenant {
        name
      }
    }
  }
`);

/** Tenant A acts; tenant B, with every scope, must neither see, change nor count any of it. */
describe.each(modes)('tenant isolation (%s mode)', (mode) => {
  let h: TestApp;
  let b: TenantClient;
  let type: string;
  let eventId: string;
  let tokenId: string;

  beforeAll(async () => {
    h = await startTestApp(mode);
    b = await h.tenant('Beta');
    type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'Isolation' } });
    const published = (await h.gql(PublishEvent, { input: { type, current: { secret: 'of A' } } })).data!
      .publishEvent;
    if (published.__typename !== 'PublishEventPayload') throw new Error('publish failed');
    eventId = published.event.id;
    const created = (await h.gql(CreateApiToken, { input: { name: 'A only', scopes: ['events:read'] } }))
      .data!.createApiToken;
    if (created.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    tokenId = created.apiToken.id;
  });
  afterAll(async () => {
    await h?.stop();
  });

  it('hides objects by id: node, auditLog', async () => {
    expect((await h.gql(NodeById, { id: eventId })).data?.node).toMatchObject({ __typename: 'Event' });
    expect((await b.gql(NodeById, { id: eventId })).data?.node).toBeNull();
    expect((await b.gql(NodeById, { id: tokenId })).data?.node).toBeNull();
    const tenantA = (await h.gql(Viewer, {})).data!.viewer.tenant!.id;
    expect((await b.gql(TenantNode, { id: tenantA })).data?.node).toBeNull();

    const entryA = (await h.gql(AuditLogs, { first: 1 })).data!.auditLogs.edges[0]!.node;
    expect((await h.gql(AuditLogById, { id: entryA.id })).data?.auditLog?.id).toBe(entryA.id);
    expect((await b.gql(AuditLogById, { id: entryA.id })).data?.auditLog).toBeNull();
  });

  it('lists and counts only its own: viewer, apiTokens, auditLogs, verifyAuditTrail', async () => {
    expect((await b.gql(Viewer, {})).data!.viewer.tenant!.name).toBe('Beta');
    const tokensB = (await b.gql(ApiTokens, { first: 100 })).data!.apiTokens.edges.map((e) => e.node.name);
    expect(tokensB).toEqual(['Initial token']);

    const logA = (await h.gql(AuditLogs, { first: 100 })).data!.auditLogs.edges.map((e) => e.node);
    const logB = (await b.gql(AuditLogs, { first: 100 })).data!.auditLogs.edges.map((e) => e.node);
    expect(logA.some((e) => e.relationId === rawId(tokenId))).toBe(true);
    expect(logB.map((e) => e.action).sort()).toEqual(['api_token.created', 'tenant.created']);
    expect(logB.some((e) => logA.some((a) => a.id === e.id))).toBe(false);

    const verifyB = (await b.gql(VerifyAuditTrail, {})).data!.verifyAuditTrail;
    expect(verifyB).toEqual({ ok: true, checked: 2, firstBrokenSequence: null, reason: null });
  });

  it("cannot change another tenant's objects", async () => {
    const revoke = (await b.gql(RevokeApiToken, { input: { id: tokenId } })).data?.revokeApiToken;
    expect(revoke).toMatchObject({ __typename: 'NotFoundError' });
    const stillThere = (await h.gql(ApiTokens, { first: 100 })).data!.apiTokens.edges.find(
      (e) => e.node.id === tokenId,
    );
    expect(stillThere?.node.revokedAt).toBeNull();
  });

  it("does not stream another tenant's events", async () => {
    const mine = await liveEvents(h.ws(), h.gql, [type]);
    const theirs = collect(h.ws({ token: b.token }), EventPublished, { types: null });
    const typeB = uniqueType();
    await h.operator(UpsertEventType, { input: { name: typeB, group: 'Isolation' } });
    await waitFor(
      async () =>
        theirs.results.length > 0 ||
        void (await b.gql(PublishEvent, { input: { type: typeB, idempotencyKey: `b-probe-${Date.now()}` } })),
      { what: "B's subscription to go live" },
    );
    theirs.results.length = 0;

    await h.gql(PublishEvent, { input: { type, idempotencyKey: 'a-secret' } });
    await b.gql(PublishEvent, { input: { type: typeB, idempotencyKey: 'b-marker' } });
    await waitFor(() => mine.keys().includes('a-secret'), { what: "A's event" });
    await waitFor(() => theirs.results.some((r) => r.data?.eventPublished.idempotencyKey === 'b-marker'), {
      what: "B's marker",
    });
    await Promise.all([mine.stop(), theirs.stop()]);
    expect(theirs.results.map((r) => r.data?.eventPublished.idempotencyKey)).toEqual(['b-marker']);
  });

  it("gives live cursors that tell nothing of another tenant's volume, and refuses them to it", async () => {
    const typeB = uniqueType();
    await h.operator(UpsertEventType, { input: { name: typeB, group: 'Isolation' } });
    const mine = collect(h.ws(), ResumedEvents, { types: [type] });
    const cursorOf = (key: string) =>
      mine.results.find((r) => r.data?.eventPublished.idempotencyKey === key)?.data?.eventPublished
        .streamCursor;
    await waitFor(
      async () => mine.results.length > 0 || void (await h.gql(PublishEvent, { input: { type } })),
      { what: 'the subscription to go live' },
    );
    await h.gql(PublishEvent, { input: { type, idempotencyKey: 'cursor-1' } });
    for (let i = 0; i < 20; i++) await b.gql(PublishEvent, { input: { type: typeB } });
    await h.gql(PublishEvent, { input: { type, idempotencyKey: 'cursor-2' } });
    const [first, second] = await waitFor(
      () => {
        const both = [cursorOf('cursor-1'), cursorOf('cursor-2')];
        return both.every(Boolean) && (both as string[]);
      },
      { what: "A's two events" },
    );
    await mine.stop();
    // Opaque: no stream position in them to subtract.
    for (const cursor of [first!, second!]) {
      expect(Buffer.from(cursor, 'base64url').toString()).not.toMatch(/(events|attempts|audit):\d+/);
    }
    // Another tenant cannot resume from them.
    const theirs = collect(h.ws({ token: b.token }), ResumedEvents, { types: [typeB], after: first! });
    const [refusal] = await waitFor(() => theirs.results.length > 0 && theirs.results, {
      what: 'the refusal',
    });
    await theirs.stop();
    expect(refusal!.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it("does not export another tenant's audit entries", async () => {
    const response = await fetch(`${h.url}/audit/export`, {
      headers: { authorization: `Bearer ${b.token}` },
    });
    const lines = (await response.text())
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { tenantId: string });
    expect(lines.length).toBeGreaterThanOrEqual(2);
    expect(new Set(lines.map((l) => l.tenantId))).toEqual(new Set([rawId(b.tenantId)]));
  });
});
