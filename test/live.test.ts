import { randomBytes } from 'node:crypto';
import { request } from 'node:http';
import type { ExecutionResult } from 'graphql';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { graphql } from './gql/index.ts';
import {
  collect,
  modes,
  newEventType,
  pausableWsClient,
  publishOrFail,
  rawId,
  startTestApp,
  webhookTo,
  type Gql,
  type TestApp,
} from './support/app.ts';
import { CreateApiToken, PublishEvent, RevokeApiToken } from './support/operations.ts';
import { startReceiver, toLocalReceivers, type Reply } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const LiveEvents = graphql(`
  subscription LiveEvents($types: [String!], $after: String) {
    eventPublished(types: $types, after: $after) {
      id
      type
      idempotencyKey
      streamCursor
    }
  }
`);

const LiveEventBodies = graphql(`
  subscription LiveEventBodies($types: [String!]) {
    eventPublished(types: $types) {
      idempotencyKey
      current
    }
  }
`);

const LiveEventShapes = graphql(`
  subscription LiveEventShapes($types: [String!], $withBody: Boolean!) {
    eventPublished(types: $types) {
      idempotencyKey
      current @include(if: $withBody)
    }
  }
`);

const LiveEventTypes = graphql(`
  subscription LiveEventTypes($types: [String!]) {
    eventPublished(types: $types) {
      idempotencyKey
      type
    }
  }
`);

const LiveAttempts = graphql(`
  subscription LiveAttempts($webhookId: ID, $statuses: [DeliveryStatus!], $after: String) {
    deliveryAttempted(webhookId: $webhookId, statuses: $statuses, after: $after) {
      deliveryId
      webhookId
      attempt
      status
      statusCode
      streamCursor
      delivery {
        id
        eventType
      }
    }
  }
`);

const LiveAudit = graphql(`
  subscription LiveAudit($after: String) {
    auditLogAdded(after: $after) {
      action
      relationName
      relationId
      sequence
      streamCursor
    }
  }
`);

const LiveDeliveryLog = graphql(`
  query LiveDeliveryLog($id: ID!) {
    delivery(id: $id) {
      attemptLog {
        attempt
        status
        statusCode
        streamCursor
      }
    }
  }
`);

const ok: Reply = (_req, res) => res.writeHead(204).end();
const failing: Reply = (_req, res) => res.writeHead(500).end('no');

/** A collected subscription, its results read loosely: each test casts what it selected. */
interface Sub {
  results: ExecutionResult<unknown>[];
  failure(): unknown;
  stop(): Promise<void>;
}
const codeOf = (result: { errors?: readonly { extensions?: Record<string, unknown> }[] } | undefined) =>
  result?.errors?.[0]?.extensions?.code;

describe.each(modes)('live subscriptions (%s mode)', (mode) => {
  let h: TestApp;
  const receivers: Awaited<ReturnType<typeof startReceiver>>[] = [];

  beforeAll(async () => {
    h = await startTestApp(mode, {
      env: {
        ...toLocalReceivers,
        HERALD_RETRY_SCHEDULE_MS: '0,50,50',
        HERALD_CIRCUIT_FAILURES: '1000',
        HERALD_LIVE_REPLAY_LIMIT: '40',
      },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await Promise.all(receivers.map((r) => r.close()));
  });

  async function endpoint(gql: Gql, reply: Reply) {
    const receiver = await startReceiver(reply);
    receivers.push(receiver);
    const type = await newEventType(h.operator, 'Live');
    return { type, ...(await webhookTo(gql, `${receiver.url}/in`, [type])) };
  }
  const publish = (gql: Gql, type: string, idempotencyKey?: string) =>
    publishOrFail(gql, { type, idempotencyKey });
  const issue = async (scopes: string[]) => {
    const created = (await h.gql(CreateApiToken, { input: { name: 'live', scopes: scopes as never } })).data!
      .createApiToken;
    if (created.__typename !== 'CreateApiTokenPayload') throw new Error(JSON.stringify(created));
    return created;
  };

  it('streams attempts by webhook and status, each with its delivery, to its own tenant only', async () => {
    const good = await endpoint(h.gql, ok);
    const bad = await endpoint(h.gql, failing);
    const other = await h.tenant('Other');
    const theirs = await endpoint(other.gql, ok);

    const ofGood = collect(h.ws(), LiveAttempts, { webhookId: good.webhookId }) as Sub;
    const unsettled = collect(h.ws(), LiveAttempts, {
      statuses: ['RETRYING', 'FAILED'],
    } as never) as Sub;
    const everything = collect(h.ws(), LiveAttempts, {}) as Sub;
    const otherTenant = collect(h.ws({ token: other.token }), LiveAttempts, {}) as Sub;
    await live(ofGood, () => publish(h.gql, good.type));
    await live(unsettled, () => publish(h.gql, bad.type));
    await live(everything, () => publish(h.gql, good.type));
    await live(otherTenant, () => publish(other.gql, theirs.type));

    const event = await publish(h.gql, bad.type);
    type Attempt = {
      deliveryId: string;
      webhookId: string;
      attempt: number;
      status: string;
      statusCode: number | null;
      streamCursor: string | null;
      delivery: { id: string; eventType: string } | null;
    };
    const attempts = (sub: Sub) =>
      sub.results.map((r) => (r.data as { deliveryAttempted: Attempt } | undefined)?.deliveryAttempted);
    const ofEvent = (sub: Sub) => {
      const mine = attempts(sub).filter((a) => a?.delivery?.eventType === bad.type);
      const deliveryIds = new Set(mine.map((a) => a!.deliveryId));
      return { mine, deliveryIds };
    };
    // The failing endpoint's delivery: attempts 1 and 2 retry, 3 gives up.
    const seen = await waitFor(
      () => {
        const found = attempts(unsettled).filter((a) => a?.status === 'FAILED');
        return found.length > 0 && found;
      },
      { what: 'the delivery to fail' },
    );
    const deliveryId = seen[0]!.deliveryId;
    const trail = attempts(unsettled).filter((a) => a?.deliveryId === deliveryId);
    expect(trail.map((a) => [a!.attempt, a!.status, a!.statusCode])).toEqual([
      [1, 'RETRYING', 500],
      [2, 'RETRYING', 500],
      [3, 'FAILED', 500],
    ]);
    expect(trail.every((a) => a!.webhookId === bad.webhookId && a!.streamCursor)).toBe(true);
    await waitFor(() => attempts(everything).filter((a) => a?.deliveryId === deliveryId).length === 3, {
      what: 'the tenant-wide subscriber to see all three',
    });

    // Succeeded attempts never reach the RETRYING/FAILED subscriber, and another webhook's never
    // reach the webhook's own.
    expect(attempts(unsettled).every((a) => a!.status !== 'SUCCEEDED')).toBe(true);
    expect(attempts(ofGood).every((a) => a!.webhookId === good.webhookId && a!.status === 'SUCCEEDED')).toBe(
      true,
    );
    expect(ofEvent(ofGood).mine).toHaveLength(0);
    // The other tenant saw its own attempts only.
    expect(attempts(otherTenant).length).toBeGreaterThan(0);
    expect(attempts(otherTenant).every((a) => a!.webhookId === theirs.webhookId)).toBe(true);
    expect(ofEvent(otherTenant).deliveryIds.size).toBe(0);

    // The attempt log says the same, and items read by a query carry no cursor.
    const log = (await h.gql(LiveDeliveryLog, { id: deliveryId })).data!.delivery!.attemptLog;
    expect(log.map((a) => [a.attempt, a.status, a.statusCode, a.streamCursor])).toEqual([
      [1, 'RETRYING', 500, null],
      [2, 'RETRYING', 500, null],
      [3, 'FAILED', 500, null],
    ]);
    expect(event.type).toBe(bad.type);
    await Promise.all([ofGood, unsettled, everything, otherTenant].map((s) => s.stop()));
  });

  it('streams audit entries to their own tenant only', async () => {
    const other = await h.tenant('Audited');
    const mine = collect(h.ws(), LiveAudit, {}) as Sub;
    const theirs = collect(h.ws({ token: other.token }), LiveAudit, {}) as Sub;
    await live(mine, () => issue(['events:read']));
    await live(theirs, () =>
      other.gql(CreateApiToken, { input: { name: 'probe', scopes: ['events:read'] } }),
    );

    const created = await issue(['webhooks:read']);
    type Entry = { action: string; relationId: string | null; sequence: number; streamCursor: string };
    const entries = (sub: Sub) => sub.results.map((r) => (r.data as { auditLogAdded: Entry }).auditLogAdded);
    const entry = await waitFor(
      () => entries(mine).find((e) => e.relationId === rawId(created.apiToken.id)),
      { what: 'the audit entry' },
    );
    expect(entry.streamCursor).toBeTruthy();
    const sequences = entries(mine).map((e) => e.sequence);
    expect(sequences).toEqual([...sequences].sort((a, b) => a - b));
    const ownIds = new Set(entries(mine).map((e) => e.relationId));
    expect(entries(theirs).some((e) => ownIds.has(e.relationId))).toBe(false);
    await Promise.all([mine.stop(), theirs.stop()]);
  });

  it('checks scopes when subscribing', async () => {
    const reader = await issue(['events:read']);
    const client = h.ws({ token: reader.token });
    for (const [document, variables] of [
      [LiveAttempts, {}],
      [LiveAudit, {}],
    ] as const) {
      const sub: Sub = collect(client, document as never, variables as never);
      const [result] = await waitFor(() => sub.results.length > 0 && sub.results, { what: 'the refusal' });
      expect(codeOf(result)).toBe('FORBIDDEN');
      expect(result!.data ?? null).toBeNull();
      await sub.stop();
    }
  });

  it('resumes from a cursor: the missed events first, then live ones, no gap and no repeat', async () => {
    const type = await newEventType(h.operator, 'Live');
    const run = randomBytes(3).toString('hex');
    const key = (n: number) => `${run}-${String(n).padStart(3, '0')}`;
    type Item = { idempotencyKey: string; streamCursor: string };
    const items = (sub: Sub) => sub.results.map((r) => (r.data as { eventPublished: Item }).eventPublished);

    const first = collect(h.ws(), LiveEvents, { types: [type] }) as Sub;
    let probes = 0;
    await live(first, () => publish(h.gql, type, `${run}-probe-${probes++}`));
    for (let n = 1; n <= 5; n++) await publish(h.gql, type, key(n));
    await waitFor(() => items(first).some((i) => i.idempotencyKey === key(5)), { what: 'the first five' });
    const cursor = items(first).find((i) => i.idempotencyKey === key(2))!.streamCursor;
    await first.stop();

    // Missed while away.
    for (let n = 6; n <= 15; n++) await publish(h.gql, type, key(n));
    // Published while the subscription opens, so some land on the seam.
    const racing = (async () => {
      for (let n = 16; n <= 30; n++) await publish(h.gql, type, key(n));
    })();
    const resumed = collect(h.ws(), LiveEvents, { types: [type], after: cursor }) as Sub;
    await racing;
    await waitFor(() => items(resumed).some((i) => i.idempotencyKey === key(30)), {
      what: 'the resumed stream to catch up',
    });
    const keys = items(resumed).map((i) => i.idempotencyKey);
    expect(keys).toEqual(Array.from({ length: 28 }, (_, i) => key(i + 3)));

    // Several types: the tenant's stream, filtered by type, resumes the same way.
    const second = await newEventType(h.operator, 'Live');
    const lastCursor = items(resumed).at(-1)!.streamCursor;
    await resumed.stop();
    await publish(h.gql, second, `${run}-second-1`);
    await publish(h.gql, type, key(31));
    const both = collect(h.ws(), LiveEvents, {
      types: [type, second],
      after: lastCursor,
    }) as Sub;
    await waitFor(() => items(both).length >= 2, { what: 'the two missed events' });
    expect(items(both).map((i) => i.idempotencyKey)).toEqual([`${run}-second-1`, key(31)]);
    await both.stop();
  });

  it('refuses cursors it cannot resume from, with a typed error', async () => {
    const type = await newEventType(h.operator, 'Live');
    const run = randomBytes(3).toString('hex');
    const first = collect(h.ws(), LiveEvents, { types: [type] }) as Sub;
    let probes = 0;
    await live(first, () => publish(h.gql, type, `${run}-probe-${probes++}`));
    const cursor = (first.results[0]!.data as { eventPublished: { streamCursor: string } }).eventPublished
      .streamCursor;
    await first.stop();
    // More missed than HERALD_LIVE_REPLAY_LIMIT (40).
    for (let n = 0; n < 45; n++) await publish(h.gql, type, `${run}-${n}`);

    const refusal = async (variables: Record<string, unknown>, document: unknown = LiveEvents) => {
      const sub: Sub = collect(h.ws(), document as never, variables as never);
      const [result] = await waitFor(() => sub.results.length > 0 && sub.results, { what: 'the refusal' });
      await sub.stop();
      return result;
    };
    const expired = await refusal({ types: [type], after: cursor });
    expect(codeOf(expired)).toBe('CURSOR_EXPIRED');
    // Nothing of the shared stream in the message: no position in it.
    expect(expired?.errors?.[0]?.message).toBe(
      'more than 40 items were missed since the cursor; read them with a query and subscribe without a cursor',
    );
    expect(codeOf(await refusal({ types: [type], after: 'not a cursor' }))).toBe('BAD_USER_INPUT');
    // A cursor of another stream, and one beyond the end of this one.
    expect(codeOf(await refusal({ after: cursor }, LiveAudit))).toBe('BAD_USER_INPUT');
    const notAWebhook = Buffer.from('Webhook:not-a-uuid').toString('base64');
    expect(codeOf(await refusal({ webhookId: notAWebhook }, LiveAttempts))).toBe('BAD_USER_INPUT');
    // A cursor Herald did not make: once the sequence in it, now refused.
    const forged = Buffer.from('events:999999999').toString('base64url');
    expect(codeOf(await refusal({ types: [type], after: forged }))).toBe('BAD_USER_INPUT');
    expect(h.app.services.live.stats().subscribers).toBe(0);
  });

  it('shares one bus subscription per subject among local subscribers, and releases it', async () => {
    const type = await newEventType(h.operator, 'Live');
    const before = h.app.services.live.stats();
    const subs = Array.from({ length: 5 }, () => collect(h.ws(), LiveEvents, { types: [type] }) as Sub);
    let probes = 0;
    for (const sub of subs) await live(sub, () => publish(h.gql, type, `probe-${type}-${probes++}`));
    expect(h.app.services.live.stats()).toEqual({
      feeds: before.feeds + 1,
      subscribers: before.subscribers + 5,
    });
    await publish(h.gql, type, `${type}-all`);
    for (const sub of subs) {
      await waitFor(
        () =>
          sub.results.some(
            (r) =>
              (r.data as { eventPublished: { idempotencyKey: string } }).eventPublished.idempotencyKey ===
              `${type}-all`,
          ),
        { what: 'every subscriber to get the event' },
      );
    }
    await Promise.all(subs.map((s) => s.stop()));
    await waitFor(() => h.app.services.live.stats().feeds === before.feeds, { what: 'the feed to go' });
  });

  it('gives subscribers of one subject the result of their own operation, variables and token', async () => {
    const type = await newEventType(h.operator, 'Live');
    const reader = await issue(['events:read']);
    const withBody = collect(h.ws(), LiveEventShapes, { types: [type], withBody: true }) as Sub;
    const withoutBody = collect(h.ws(), LiveEventShapes, { types: [type], withBody: false }) as Sub;
    const typed = collect(h.ws(), LiveEventTypes, { types: [type] }) as Sub;
    const otherToken = collect(h.ws({ token: reader.token }), LiveEventShapes, {
      types: [type],
      withBody: true,
    }) as Sub;
    const subs = [withBody, withoutBody, typed, otherToken];
    let probes = 0;
    for (const sub of subs) await live(sub, () => publish(h.gql, type, `${type}-probe-${probes++}`));

    await publishOrFail(h.gql, { type, idempotencyKey: `${type}-marked`, current: { n: 1 } });
    const marked = (sub: Sub) =>
      sub.results
        .map((r) => (r.data as { eventPublished: Record<string, unknown> }).eventPublished)
        .find((e) => e.idempotencyKey === `${type}-marked`);
    for (const sub of subs) await waitFor(() => marked(sub), { what: 'every subscriber to get the event' });
    expect(marked(withBody)).toEqual({ idempotencyKey: `${type}-marked`, current: { n: 1 } });
    expect(marked(withoutBody)).toEqual({ idempotencyKey: `${type}-marked` });
    expect(marked(typed)).toEqual({ idempotencyKey: `${type}-marked`, type });
    expect(marked(otherToken)).toEqual({ idempotencyKey: `${type}-marked`, current: { n: 1 } });
    await Promise.all(subs.map((s) => s.stop()));
  });

  it('closes the sockets of a revoked token and releases their subscriptions', async () => {
    const type = await newEventType(h.operator, 'Live');
    const doomed = await issue(['events:read']);
    const before = h.app.services.live.stats().subscribers;
    const sub = collect(h.ws({ token: doomed.token }), LiveEvents, { types: [type] }) as Sub;
    let probes = 0;
    await live(sub, () => publish(h.gql, type, `${type}-probe-${probes++}`));
    expect(h.app.services.live.stats().subscribers).toBe(before + 1);
    await h.gql(RevokeApiToken, { input: { id: doomed.apiToken.id } });
    await waitFor(() => sub.failure(), { what: 'the socket to close' });
    expect((sub.failure() as { code: number }).code).toBe(4401);
    await waitFor(() => h.app.services.live.stats().subscribers === before, { what: 'the release' });
  });

  /** Publishes probes of `type` until the SSE stream delivers one: from then on it is live. */
  async function liveOverSse(stream: ReturnType<typeof sse>, type: string) {
    let n = 0;
    await waitFor(
      async () => {
        if (stream.text().includes(`"${type}-sse-`)) return true;
        await publish(h.gql, type, `${type}-sse-${n++}`);
        return false;
      },
      { what: 'an event over SSE' },
    );
  }

  it('streams over server-sent events too, and releases the subscription when the client leaves', async () => {
    const type = await newEventType(h.operator, 'Live');
    const before = h.app.services.live.stats().subscribers;
    const stream = sse(h.url, h.token, type);
    await liveOverSse(stream, type);
    expect(stream.contentType()).toContain('text/event-stream');
    expect(stream.text()).toMatch(/event: next\ndata: \{"data":\{"eventPublished":\{"idempotencyKey":/);
    expect(h.app.services.live.stats().subscribers).toBe(before + 1);
    await stream.close();
    await waitFor(() => h.app.services.live.stats().subscribers === before, { what: 'the release' });
  });

  it('releases an SSE subscription whose client left while it was starting', async () => {
    const type = await newEventType(h.operator, 'Live');
    const before = h.app.services.live.stats().subscribers;
    await leaveWhileStarting(h.url, h.token, type);
    // Sent after it on the same path: live only well after the abandoned one has started.
    const stream = sse(h.url, h.token, type);
    await liveOverSse(stream, type);
    await waitFor(() => h.app.services.live.stats().subscribers === before + 1, {
      what: 'the abandoned subscription to go',
    });
    await stream.close();
    await waitFor(() => h.app.services.live.stats().subscribers === before, { what: 'the release' });
  });

  it('ends the SSE streams of a revoked token with UNAUTHENTICATED and releases them', async () => {
    const type = await newEventType(h.operator, 'Live');
    const doomed = await issue(['events:read']);
    const before = h.app.services.live.stats().subscribers;
    const stream = sse(h.url, doomed.token, type);
    await liveOverSse(stream, type);
    expect(h.app.services.live.stats().subscribers).toBe(before + 1);
    await h.gql(RevokeApiToken, { input: { id: doomed.apiToken.id } });
    await waitFor(() => stream.ended(), { what: 'the stream to end' });
    expect(stream.text()).toMatch(
      /event: next\ndata: \{"errors":\[\{"message":"token revoked","extensions":\{"code":"UNAUTHENTICATED"\}\}\]\}\n\nevent: complete/,
    );
    await waitFor(() => h.app.services.live.stats().subscribers === before, { what: 'the release' });
  });
});

describe('a slow subscriber', () => {
  let h: TestApp;
  beforeAll(async () => {
    h = await startTestApp('production', {
      env: { HERALD_LIVE_BUFFER: '20', HERALD_LIVE_REPLAY_LIMIT: '10', HERALD_WS_KEEPALIVE_MS: '60000' },
    });
  });
  afterAll(async () => h?.stop());

  it('is cut off with SLOW_SUBSCRIBER once its buffer is full, instead of growing memory', async () => {
    const type = await newEventType(h.operator, 'Live');
    const slow = pausableWsClient(h.url, h.token);
    const sub = collect(slow.client, LiveEventBodies, { types: [type] }) as Sub;
    let probes = 0;
    await live(sub, () => h.gql(PublishEvent, { input: { type, idempotencyKey: `probe-${probes++}` } }));
    const subscribers = h.app.services.live.stats().subscribers;
    expect(subscribers).toBe(1);

    slow.pause();
    // 100 KB each: the socket buffers fill, then the subscriber's queue of 20.
    const current = { blob: 'x'.repeat(100_000) };
    let published = 0;
    await waitFor(
      async () => {
        if (h.app.services.live.stats().subscribers === 0) return true;
        for (let i = 0; i < 10; i++) {
          await h.gql(PublishEvent, { input: { type, current, idempotencyKey: `big-${published++}` } });
        }
        return false;
      },
      { what: 'the subscriber to be cut off', timeoutMs: 20_000 },
    );
    slow.resume();
    await waitFor(() => sub.results.some((r) => codeOf(r) === 'SLOW_SUBSCRIBER'), { what: 'the notice' });
    const last = sub.results.at(-1)!;
    expect(codeOf(last)).toBe('SLOW_SUBSCRIBER');
    expect(sub.results.length).toBeLessThan(published + probes);
    await sub.stop();
    expect(sub.failure()).toBeUndefined();
    await slow.client.dispose();
  });
});

describe('keep-alives', () => {
  let h: TestApp;
  beforeAll(async () => {
    h = await startTestApp('embedded', { env: { HERALD_WS_KEEPALIVE_MS: '1000' } });
  });
  afterAll(async () => h?.stop());

  it('terminate a socket that stops answering pings', async () => {
    const type = await newEventType(h.operator, 'Live');
    const silent = pausableWsClient(h.url, h.token);
    const sub = collect(silent.client, LiveEvents, { types: [type] }) as Sub;
    let probes = 0;
    await live(sub, () => h.gql(PublishEvent, { input: { type, idempotencyKey: `probe-${probes++}` } }));
    expect(h.app.services.live.stats().subscribers).toBe(1);
    silent.pause();
    await waitFor(() => h.app.services.live.stats().subscribers === 0, {
      what: 'the server to drop the silent socket',
      timeoutMs: 5_000,
    });
    silent.resume();
    await waitFor(() => silent.closed(), { what: 'the client to see the close' });
    await sub.stop();
  });
});

/** Publishes through `probe` until the subscription delivers something: from then on it is live. */
async function live(sub: Sub, probe: () => Promise<unknown>) {
  await waitFor(
    async () => {
      if (sub.results.length > 0) return true;
      await probe();
      return false;
    },
    { what: 'the subscription to go live' },
  );
}

const sseBody = (type: string) =>
  JSON.stringify({
    query: 'subscription ($types: [String!]) { eventPublished(types: $types) { idempotencyKey } }',
    variables: { types: [type] },
  });

/** An SSE subscription to eventPublished of `type`, read in the background. */
function sse(url: string, token: string, type: string) {
  const abort = new AbortController();
  let text = '';
  let contentType: string | null = null;
  let ended = false;
  const reading = (async () => {
    const response = await fetch(`${url}/graphql`, {
      method: 'POST',
      signal: abort.signal,
      headers: {
        authorization: `Bearer ${token}`,
        'content-type': 'application/json',
        accept: 'text/event-stream',
      },
      body: sseBody(type),
    });
    contentType = response.headers.get('content-type');
    const decoder = new TextDecoder();
    for await (const chunk of response.body!) text += decoder.decode(chunk);
    ended = true;
  })().catch(() => undefined);
  return {
    text: () => text,
    contentType: () => contentType,
    /** The server ended the response. */
    ended: () => ended,
    async close() {
      abort.abort();
      await reading;
    },
  };
}

/** Sends an SSE subscription and hangs up as soon as it is sent, before the server answers. */
async function leaveWhileStarting(url: string, token: string, type: string) {
  const body = sseBody(type);
  const req = request(`${url}/graphql`, {
    method: 'POST',
    headers: {
      authorization: `Bearer ${token}`,
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      accept: 'text/event-stream',
    },
  });
  req.on('error', () => undefined);
  await new Promise<void>((resolve) => req.end(body, resolve));
  req.destroy();
}
