import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collect, modes, startTestApp, type TestApp } from './support/app.ts';
import { EventPublished } from './support/operations.ts';
import { waitFor } from './support/wait.ts';

type Sub = ReturnType<typeof collect>;
const codeOf = (sub: Sub) =>
  (sub.results[0]?.errors?.[0]?.extensions?.code as string | undefined) ??
  (sub.failure() as { extensions?: { code?: string } }[] | undefined)?.[0]?.extensions?.code;

/** A token, and a socket, hold a bounded number of live subscriptions. */
describe.each(modes)('live subscription limits (%s mode)', (mode) => {
  let h: TestApp;
  beforeAll(async () => {
    h = await startTestApp(mode, {
      env: { HERALD_LIVE_MAX_PER_SOCKET: '2', HERALD_LIVE_MAX_PER_TOKEN: '3' },
    });
  });
  afterAll(async () => {
    await h?.stop();
  });

  const subscribers = () => h.app.services.live.stats().subscribers;
  const refused = async (sub: Sub) => {
    await waitFor(() => sub.results.length > 0 || sub.failure() !== undefined, { what: 'the refusal' });
    return codeOf(sub);
  };

  it('refuses a subscription past the socket’s or the token’s limit with TOO_MANY_SUBSCRIPTIONS', async () => {
    const first = h.ws();
    const held = [
      collect(first, EventPublished, { types: null }),
      collect(first, EventPublished, { types: null }),
    ];
    await waitFor(() => subscribers() === 2, { what: 'two subscriptions' });
    expect(await refused(collect(first, EventPublished, { types: null }))).toBe('TOO_MANY_SUBSCRIPTIONS');

    const second = h.ws();
    held.push(collect(second, EventPublished, { types: null }));
    await waitFor(() => subscribers() === 3, { what: 'the third' });
    expect(await refused(collect(second, EventPublished, { types: null }))).toBe('TOO_MANY_SUBSCRIPTIONS');
    const sse = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${h.token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: JSON.stringify({ query: 'subscription { eventPublished { id } }' }),
    });
    expect(await sse.text()).toContain('TOO_MANY_SUBSCRIPTIONS');

    // Another tenant's token has its own allowance.
    const other = await h.tenant('Other');
    const theirs = collect(h.ws({ token: other.token }), EventPublished, { types: null });
    await waitFor(() => subscribers() === 4, { what: "the other tenant's subscription" });

    // Ending one makes room again.
    await held.shift()!.stop();
    await waitFor(() => subscribers() === 3, { what: 'the release' });
    held.push(collect(second, EventPublished, { types: null }));
    await waitFor(() => subscribers() === 4, { what: 'a subscription in the room made' });
    await Promise.all([...held, theirs].map((sub) => sub.stop()));
    await waitFor(() => subscribers() === 0, { what: 'every release' });
  });
});
