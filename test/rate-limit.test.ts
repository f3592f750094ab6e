import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import { modes, startTestApp, type TestApp } from './support/app.ts';
import { CreateTenant, Viewer } from './support/operations.ts';

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
    expect(hog.filter((r) => r.status === 200).length).toBeGreaterThanOrEqual(10);
    expect(limited.length).toBeGreaterThanOrEqual(10);
    expect(limited[0]!.body.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    expect(Number(limited[0]!.retryAfter)).toBeGreaterThanOrEqual(1);
    expect(bystander.map((r) => r.status)).toEqual(Array(8).fill(200));
    // The operator is not limited.
    expect(
      (await Promise.all(Array.from({ length: 15 }, () => h.operator(Viewer, {})))).map((r) => r.status),
    ).toEqual(Array(15).fill(200));
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
