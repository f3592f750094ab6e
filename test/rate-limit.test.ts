import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { collect, modes, startTestApp, type TestApp } from './support/app.ts';
import { CreateTenant, EventPublished, Viewer } from './support/operations.ts';
import { waitFor } from './support/wait.ts';

const PlannedTenant = graphql(`
  mutation PlannedTenant($input: CreateTenantInput!) {
    createTenant(input: $input) {
      ... on CreateTenantPayload {
        token
        tenant {
          requestsPerSecond
        }
      }
    }
  }
`);

/** Each token has a rate: one integrator's loop cannot starve the others. */
describe.each(modes)('rate limits (%s mode)', (mode) => {
  let h: TestApp;
  beforeAll(async () => {
    // 5 a second, bursts of 10.
    h = await startTestApp(mode, { env: { HERALD_RATE_LIMIT_PER_SECOND: '5' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const burst = async (token: string, n: number) => {
    const responses = await Promise.all(
      Array.from({ length: n }, () =>
        fetch(`${h.url}/graphql`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body: JSON.stringify({ query: '{ viewer { scopes } }' }),
        }),
      ),
    );
    return Promise.all(
      responses.map(async (r) => ({
        status: r.status,
        retryAfter: r.headers.get('retry-after'),
        body: (await r.json()) as { errors?: { extensions?: { code?: string } }[] },
      })),
    );
  };

  it('answers a token past its rate with 429, RATE_LIMITED and Retry-After, and no other token', async () => {
    const other = await h.tenant('Bystander');
    const [hog, bystander] = await Promise.all([burst(h.token, 25), burst(other.token, 8)]);
    const limited = hog.filter((r) => r.status === 429);
    // Bursts of 10, refilled at 5 a second while the burst arrives (the exact arithmetic is the
    // unit test's).
    expect(hog.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(10);
    expect(limited.length).toBeGreaterThan(0);
    expect(limited[0]!.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(bystander.map((r) => r.status)).toEqual(Array(8).fill(200));
    // The operator is not limited.
    expect(
      (await Promise.all(Array.from({ length: 15 }, () => h.operator(Viewer, {})))).map((r) => r.status),
    ).toEqual(Array(15).fill(200));
  });

  it('refuses a graphql-ws subscribe past the rate alone, leaving the socket and its other subscriptions', async () => {
    const tenant = await h.tenant('Subscriber');
    const client = h.ws({ token: tenant.token });
    const subs = Array.from({ length: 25 }, () => collect(client, EventPublished, { types: null }));
    const codeOf = (sub: (typeof subs)[number]) =>
      (sub.failure() as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code;
    const refused = () => subs.filter((sub) => codeOf(sub) === 'RATE_LIMITED').length;
    // Each ends refused or live: the socket was not closed on the others.
    await waitFor(() => refused() + h.app.services.live.stats().subscribers === 25, {
      what: 'each subscription refused or live',
    });
    expect(refused()).toBeGreaterThan(0);
    expect(h.app.services.live.stats().subscribers).toBeGreaterThanOrEqual(10);
    await Promise.all(subs.map((s) => s.stop()));
  });

  it("takes a tenant's rate from its plan", async () => {
    const created = (await h.operator(PlannedTenant, { input: { name: 'Big plan', requestsPerSecond: 100 } }))
      .data!.createTenant;
    if (!('token' in created)) throw new Error('createTenant failed');
    expect(created.tenant.requestsPerSecond).toBe(100);
    expect((await burst(created.token, 25)).map((r) => r.status)).toEqual(Array(25).fill(200));
    const plain = (await h.operator(CreateTenant, { input: { name: 'Default plan' } })).data!.createTenant;
    if (plain.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    expect((await burst(plain.token, 25)).some((r) => r.status === 429)).toBe(true);
  });
});
