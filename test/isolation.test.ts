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
