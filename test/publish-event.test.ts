import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import type { PublishEventInput } from './gql/graphql.ts';
import {
  collect,
  httpExecutor,
  liveEvents,
  modes,
  startTestApp,
  uniqueType,
  type TestApp,
} from './support/app.ts';
import { CreateApiToken, EventPublished, PublishEvent, UpsertEventType } from './support/operations.ts';
import { waitFor } from './support/wait.ts';

const Catalog = graphql(`
  query Catalog($group: String) {
    eventTypes(group: $group) {
      name
      group
    }
    eventTypeGroups {
      name
      eventTypes {
        name
      }
    }
  }
`);

const EventNode = graphql(`
  query EventNode($id: ID!) {
    node(id: $id) {
      __typename
      ... on Event {
        type
        current
      }
    }
  }
`);

const ListEvents = graphql(`
  query ListEvents($first: Int, $after: String, $filter: EventFilter) {
    events(first: $first, after: $after, filter: $filter) {
      edges {
        node {
          idempotencyKey
          type
        }
      }
      pageInfo {
        hasNextPage
        endCursor
      }
    }
  }
`);

describe.each(modes)('publishing events (%s mode)', (mode) => {
  let h: TestApp;

  beforeAll(async () => {
    h = await startTestApp(mode);
  });
  afterAll(async () => {
    await h?.stop();
  });

  async function catalogType(group = 'Invoices') {
    const name = uniqueType();
    const result = await h.operator(UpsertEventType, { input: { name, group } });
    expect(result.data?.upsertEventType.__typename).toBe('UpsertEventTypePayload');
    return name;
  }

  const publish = (input: PublishEventInput) =>
    h.gql(PublishEvent, { input }).then((r) => r.data!.publishEvent);

  const liveSubscription = (types: string[]) => liveEvents(h.ws(), h.gql, types);

  it('delivers a published event to a graphql-ws subscriber', async () => {
    const type = await catalogType();
    const sub = await liveSubscription([type]);

    const published = await publish({
      type,
      current: { id: 7, total: 12.5 },
      previous: { id: 7, total: 10 },
    });
    expect(published.__typename).toBe('PublishEventPayload');
    if (published.__typename !== 'PublishEventPayload') return;
    expect(published.duplicate).toBe(false);
    expect(published.event.meta).toEqual({ module: type.split('.')[0], model: 'invoice', action: 'paid' });

    await waitFor(() => sub.results.length >= 1, { what: 'the event' });
    await sub.stop();
    expect(sub.results[0]!.data!.eventPublished).toMatchObject({
      id: published.event.id,
      type,
      current: { id: 7, total: 12.5 },
      meta: { model: 'invoice' },
    });

    const node = await h.gql(EventNode, { id: published.event.id });
    expect(node.data?.node).toEqual({ __typename: 'Event', type, current: { id: 7, total: 12.5 } });
  });

  it('stores any JSON value as current, as it was sent', async () => {
    const type = await catalogType();
    for (const current of ['a string', 42, [1, 'two', null], true, { nested: { list: [] } }]) {
      const published = await publish({ type, current });
      if (published.__typename !== 'PublishEventPayload') throw new Error(published.__typename);
      const node = await h.gql(EventNode, { id: published.event.id });
      expect(node.data?.node).toEqual({ __typename: 'Event', type, current });
    }
  });

  it('publishes an idempotency key once, and refuses it for a different event', async () => {
    const type = await catalogType();
    const sub = await liveSubscription([type]);

    const first = await publish({ type, current: { a: 1, b: [1, 2] }, idempotencyKey: `${type}/order-42` });
    const again = await publish({ type, current: { b: [1, 2], a: 1 }, idempotencyKey: `${type}/order-42` });
    const other = await publish({ type, current: { a: 2 }, idempotencyKey: `${type}/order-42` });
    expect(first.__typename === 'PublishEventPayload' && first.duplicate).toBe(false);
    expect(again.__typename === 'PublishEventPayload' && again.duplicate).toBe(true);
    if (first.__typename === 'PublishEventPayload' && again.__typename === 'PublishEventPayload') {
      expect(again.event.id).toBe(first.event.id);
    }
    expect(other).toMatchObject({ __typename: 'ConflictError' });

    await publish({ type, idempotencyKey: `${type}/sentinel` });
    await waitFor(
      () => sub.results.some((r) => r.data?.eventPublished.idempotencyKey === `${type}/sentinel`),
      {
        what: 'the sentinel',
      },
    );
    await sub.stop();
    expect(sub.results.map((r) => r.data?.eventPublished.idempotencyKey)).toEqual([
      `${type}/order-42`,
      `${type}/sentinel`,
    ]);
  });

  it('refuses an unknown type or malformed input with a typed error and publishes nothing', async () => {
    const type = await catalogType();
    // Every type of the tenant: anything published by the refused calls would show up here.
    const sub = await liveSubscription([type]);
    const all = collect(h.ws(), EventPublished, { types: null });
    await waitFor(
      async () =>
        all.results.length > 0 || void (await publish({ type, idempotencyKey: `${type}/all-${Date.now()}` })),
      { what: 'the all-types subscription to go live' },
    );
    await publish({ type, idempotencyKey: `${type}/all-live` });
    // Two subjects, two feeds: each may see the marker at its own moment, so wait for both.
    const sawMarker = (list: typeof all) =>
      list.results.some((r) => r.data?.eventPublished.idempotencyKey === `${type}/all-live`);
    await waitFor(() => sawMarker(all) && sawMarker(sub), { what: 'the marker on both subscriptions' });
    all.results.length = 0;
    sub.results.length = 0;

    const unknown = await publish({ type: uniqueType('nothing', 'here'), idempotencyKey: `${type}/u1` });
    expect(unknown).toMatchObject({ __typename: 'ValidationError', fields: [{ path: ['input', 'type'] }] });
    const badName = await publish({ type: 'Not A Type', idempotencyKey: `${type}/u2` });
    expect(badName).toMatchObject({ __typename: 'ValidationError', fields: [{ path: ['input', 'type'] }] });
    const longKey = await publish({ type, idempotencyKey: 'k'.repeat(256) });
    expect(longKey).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'idempotencyKey'] }],
    });
    const huge = await publish({ type, current: { blob: 'x'.repeat(300_000) } });
    expect(huge).toMatchObject({ __typename: 'ValidationError', fields: [{ path: ['input', 'current'] }] });
    const missingType = await h.gql(PublishEvent, { input: {} as never });
    expect(missingType.errors?.[0]?.message).toMatch(/type/);

    const control = await publish({ type, idempotencyKey: `${type}/bad\u0007key` });
    expect(control).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'idempotencyKey'] }],
    });

    await publish({ type, idempotencyKey: `${type}/sentinel` });
    await waitFor(() => all.results.length >= 1 && sub.results.length >= 1, { what: 'the sentinel' });
    await Promise.all([sub.stop(), all.stop()]);
    expect(sub.results.map((r) => r.data?.eventPublished.idempotencyKey)).toEqual([`${type}/sentinel`]);
    // Only the sentinel: nothing the refused calls sent.
    expect(all.results.map((r) => r.data?.eventPublished.idempotencyKey)).toEqual([`${type}/sentinel`]);
  });

  it('checks current against the type’s JSON Schema, and refuses a schema that is not one', async () => {
    const type = uniqueType();
    const schema = { type: 'object', required: ['id'], properties: { id: { type: 'integer' } } };
    expect(
      (await h.operator(UpsertEventType, { input: { name: type, group: 'Typed', schema } })).data
        ?.upsertEventType,
    ).toMatchObject({ __typename: 'UpsertEventTypePayload' });
    expect(await publish({ type, current: { id: 'seven' } })).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'current', 'id'], message: '/id must be integer' }],
    });
    expect(await publish({ type, current: {} })).toMatchObject({ __typename: 'ValidationError' });
    expect(await publish({ type, current: { id: 7 } })).toMatchObject({ __typename: 'PublishEventPayload' });

    const broken = await h.operator(UpsertEventType, {
      input: { name: type, group: 'Typed', schema: { type: 'nope' } },
    });
    expect(broken.data?.upsertEventType).toMatchObject({
      __typename: 'ValidationError',
      fields: [{ path: ['input', 'schema'] }],
    });
    await h.operator(UpsertEventType, { input: { name: type, group: 'Typed', schema: null } });
    expect(await publish({ type, current: { id: 'anything goes' } })).toMatchObject({
      __typename: 'PublishEventPayload',
    });
  });

  it('lists published events newest first, by type, a page at a time, to readers only', async () => {
    const [a, b] = [await catalogType(), await catalogType()];
    for (const [type, key] of [
      [a, 'a1'],
      [b, 'b1'],
      [a, 'a2'],
      [a, 'a3'],
    ] as const) {
      await publish({ type, idempotencyKey: `${a}/${key}` });
    }
    const keys = (page: { edges: { node: { idempotencyKey: string } }[] }) =>
      page.edges.map((e) => e.node.idempotencyKey.split('/')[1]);
    const first = (await h.gql(ListEvents, { first: 2, filter: { types: [a] } })).data!.events;
    expect([keys(first), first.pageInfo.hasNextPage]).toEqual([['a3', 'a2'], true]);
    const next = (
      await h.gql(ListEvents, { first: 2, after: first.pageInfo.endCursor, filter: { types: [a] } })
    ).data!.events;
    expect([keys(next), next.pageInfo.hasNextPage]).toEqual([['a1'], false]);
    const both = (await h.gql(ListEvents, { first: 10, filter: { types: [a, b] } })).data!.events;
    expect(keys(both)).toEqual(['a3', 'a2', 'b1', 'a1']);

    const bad = await h.gql(ListEvents, { after: 'nope', filter: { types: ['not a type'] } });
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const other = await h.tenant('Elsewhere');
    expect(keys((await other.gql(ListEvents, { filter: { types: [a] } })).data!.events)).toEqual([]);
    const publisher = (
      await h.gql(CreateApiToken, { input: { name: 'publisher', scopes: ['events:publish'] } })
    ).data!.createApiToken;
    if (publisher.__typename !== 'CreateApiTokenPayload') throw new Error('createApiToken failed');
    const denied = await httpExecutor(h.url, publisher.token)(ListEvents, {});
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  it('lists the catalog flat and grouped', async () => {
    const group = `Group ${uniqueType()}`;
    const a = uniqueType('lead', 'created');
    const b = uniqueType('lead', 'won');
    for (const name of [b, a]) await h.operator(UpsertEventType, { input: { name, group } });
    const catalog = await h.gql(Catalog, { group });
    expect(catalog.data?.eventTypes.map((t) => t.name).sort()).toEqual([a, b].sort());
    const grouped = catalog.data?.eventTypeGroups.find((g) => g.name === group);
    expect(grouped?.eventTypes.map((t) => t.name).sort()).toEqual([a, b].sort());

    const bad = await h.operator(UpsertEventType, { input: { name: 'lead..created', group: '' } });
    const refused = bad.data?.upsertEventType;
    expect(refused?.__typename).toBe('ValidationError');
    if (refused?.__typename === 'ValidationError') {
      expect(refused.fields.map((f) => f.path.join('.')).sort()).toEqual(['input.group', 'input.name']);
    }
  });

  it('refuses requests and sockets without a valid token', async () => {
    const anonymous = await h.gql(Catalog, {}, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await h.gql(Catalog, {}, { token: 'wrong' })).status).toBe(401);

    const sub = collect(h.ws({ token: 'wrong' }), EventPublished, { types: null });
    await waitFor(() => sub.failure(), { what: 'the socket to close' });
    expect((sub.failure() as { code: number }).code).toBe(4401);
  });

  it('refuses subscription filters that are not event type names', async () => {
    const sub = collect(h.ws(), EventPublished, { types: ['invoices.>'] });
    await waitFor(() => sub.results.length > 0 || sub.failure(), { what: 'the refusal' });
    expect(sub.results[0]?.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  it('answers /healthz and /readyz', async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', database: 'ok', bus: 'ok' });
  });
});
