import { getMetricsFromIterator, type PromMetrics } from 'prom2javascript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApp } from '../src/app.ts';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/logger.ts';
import {
  modeEnv,
  newEventType,
  publishOrFail,
  startTestApp,
  webhookTo,
  type TestApp,
} from './support/app.ts';
import { post, sourceOf } from './support/inbound.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { promtool, runPromtool } from './support/promtool.ts';
import { waitFor } from './support/wait.ts';

/**
 * Scrapes and parses. promtool (where there is one: CI has it) parses the whole text as Prometheus
 * does and lints the names: only prom-client's own nodejs_active_*_total gauges may be reported.
 * Herald's values are then read with prom2javascript (which knows no NaN, which prom-client's
 * event-loop gauges may be).
 */
async function scrape(url: string, token?: string): Promise<PromMetrics> {
  const response = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  expect(response.status).toBe(200);
  expect(response.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
  const text = await response.text();
  if (promtool) {
    const checked = await runPromtool(['check', 'metrics'], text);
    const problems = checked.output.split('\n').filter((line) => line && !line.startsWith('nodejs_active_'));
    expect(problems).toEqual([]);
    expect([0, 3]).toContain(checked.code);
  }
  const ours = text.split('\n').filter((line) => !/^(# (HELP|TYPE) )?nodejs_/.test(line));
  return getMetricsFromIterator(ours[Symbol.iterator]());
}

/** The value of one sample of a counter or gauge (0 when absent), or of a histogram's count. */
function valueOf(families: PromMetrics, name: string, labels: Record<string, string> = {}): number {
  const sample = samples(families, name).find((m) =>
    Object.entries(labels).every(([key, value]) => m.labels[key] === value),
  );
  return sample ? ('value' in sample ? sample.value : (sample.count ?? 0)) : 0;
}

const samples = (families: PromMetrics, name: string) => families[name]?.data ?? [];

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

describe('metrics', () => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    receiver = await startReceiver();
    h = await startTestApp('production', {
      // The failing endpoint's four attempts open its circuit.
      env: { ...toLocalReceivers, HERALD_RETRY_SCHEDULE_MS: '0,60000', HERALD_CIRCUIT_FAILURES: '4' },
    });
  });
  afterAll(async () => {
    await h?.stop();
    await receiver?.close();
  });

  const metricsUrl = () => `${h.url}/metrics`;

  it('are the operator’s on the API port: no token is 401, a tenant token 403', async () => {
    expect((await fetch(metricsUrl())).status).toBe(401);
    const tenant = await fetch(metricsUrl(), { headers: { authorization: `Bearer ${h.token}` } });
    expect(tenant.status).toBe(403);
    expect(((await tenant.json()) as { error: string }).error).toContain('operator');
    expect(
      (await fetch(metricsUrl(), { method: 'POST', headers: { authorization: `Bearer ${h.operatorToken}` } }))
        .status,
    ).toBe(405);
  });

  it('move with real deliveries, GraphQL operations and inbound requests, with bounded labels', async () => {
    const before = await scrape(metricsUrl(), h.operatorToken);
    const type = await newEventType(h.operator, 'Metrics');
    receiver.reply((req, res) => res.writeHead(req.path === '/fail' ? 503 : 200).end());
    await webhookTo(h.gql, `${receiver.url}/ok`, [type]);
    await webhookTo(h.gql, `${receiver.url}/fail`, [type]);
    for (let n = 0; n < 3; n++) await publishOrFail(h.gql, { type, current: { n } });
    const source = await sourceOf(h.gql, {
      name: 'Metrics',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
    });
    expect((await post(source.url, '{"a":1}')).status).toBe(200);
    expect((await post(`${source.url}x`, '{"a":1}')).status).toBe(404);
    // Four events (three published, one received) to two webhooks.
    await waitFor(() => receiver.received.length >= 8, { what: 'eight attempts' });
    // What a client may get wrong reaches no label: a path, a document, a token.
    expect((await fetch(`${h.url}/webhooks/${crypto.randomUUID()}`)).status).toBe(404);
    const graphql = (body: string, token = h.token) =>
      fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body,
      });
    await graphql(JSON.stringify({ query: `{ ${crypto.randomUUID().replaceAll('-', '_')} }` }));
    await graphql(JSON.stringify({ query: '{ viewer {' }));
    await graphql(JSON.stringify({ query: '{ viewer { tenant { name } } }' }), 'hrld_not_a_token_at_all_000');

    const delta = (after: PromMetrics, name: string, labels?: Record<string, string>) =>
      valueOf(after, name, labels) - valueOf(before, name, labels);
    // An attempt is counted once its endpoint answered: wait for the scrape to show all eight.
    const after = await waitFor(
      async () => {
        const families = await scrape(metricsUrl(), h.operatorToken);
        const settled =
          valueOf(families, 'herald_delivery_attempts_in_flight') === 0 &&
          delta(families, 'herald_delivery_attempt_duration_seconds', { status: 'RETRYING' }) >= 4 &&
          delta(families, 'herald_delivery_attempt_duration_seconds', { status: 'SUCCEEDED' }) >= 4 &&
          samples(families, 'herald_outbox_entries').every((m) => 'value' in m && m.value === 0) &&
          valueOf(families, 'herald_consumer_ack_pending_messages', { consumer: 'deliverer' }) === 0 &&
          // Readings are taken at most once a second: one may predate the last attempt.
          valueOf(families, 'herald_circuits_open') === 1;
        return settled ? families : false;
      },
      { what: 'the attempts counted' },
    );
    expect(delta(after, 'herald_delivery_attempts_total', { status: 'SUCCEEDED', response: '2xx' })).toBe(4);
    expect(delta(after, 'herald_delivery_attempts_total', { status: 'RETRYING', response: '5xx' })).toBe(4);
    expect(delta(after, 'herald_delivery_attempt_duration_seconds', { status: 'SUCCEEDED' })).toBe(4);
    expect(delta(after, 'herald_deliveries_settled_total', { status: 'SUCCEEDED' })).toBe(4);
    for (const consumer of ['dispatcher', 'deliverer']) {
      expect(valueOf(after, 'herald_consumer_pending_messages', { consumer }), consumer).toBe(0);
    }
    expect(
      samples(after, 'herald_outbox_entries')
        .map((m) => m.labels.outbox)
        .sort(),
    ).toEqual(['attempts', 'audit', 'events', 'inbound']);
    // Three events to two webhooks, and the inbound request's event to both.
    expect(delta(after, 'herald_deliveries_dispatched_total')).toBe(8);
    expect(delta(after, 'herald_dispatch_lag_seconds')).toBe(4);
    expect(
      delta(after, 'herald_graphql_operations_total', {
        type: 'mutation',
        field: 'publishEvent',
        result: 'ok',
      }),
    ).toBe(3);
    expect(
      delta(after, 'herald_graphql_operation_duration_seconds', { type: 'mutation', field: 'publishEvent' }),
    ).toBe(3);
    expect(delta(after, 'herald_inbound_requests_total', { outcome: 'ROUTED' })).toBe(1);
    expect(delta(after, 'herald_inbound_requests_total', { outcome: 'NOT_FOUND' })).toBe(1);
    expect(delta(after, 'herald_http_requests_total', { route: 'inbound', code: '4xx' })).toBe(1);
    expect(delta(after, 'herald_http_requests_total', { route: 'other', code: '4xx' })).toBe(1);
    const operations = (result: string) =>
      delta(after, 'herald_graphql_operations_total', { type: 'unknown', field: 'unknown', result });
    expect(operations('invalid')).toBe(2);
    expect(operations('refused')).toBe(1);
    expect(
      delta(after, 'herald_http_requests_total', { route: '/graphql', code: '2xx' }),
    ).toBeGreaterThanOrEqual(3);
    // The four retries wait a minute in the database.
    expect(valueOf(after, 'herald_deliveries_parked', { reason: 'RETRYING' })).toBe(4);
    expect(samples(after, 'herald_metrics_reading_failures_total')).toEqual([]);
    expect(valueOf(after, 'process_cpu_user_seconds_total')).toBeGreaterThan(0);
    expect(valueOf(after, 'process_resident_memory_bytes')).toBeGreaterThan(0);

    // No label carries a tenant, an id, a URL or a token.
    const values = Object.values(after).flatMap((f) => f.data.flatMap((m) => Object.values(m.labels)));
    expect(
      values.filter((v) => UUID.test(v) || v.includes('://') || v.includes('/in/') || v.length > 40),
    ).toEqual([]);
    expect(new Set(Object.values(after).flatMap((f) => f.data.map((m) => m.labels.role)))).toEqual(
      new Set(['all']),
    );
  });

  it('count live subscribers while they are open, and the frames sent to them', async () => {
    const type = await newEventType(h.operator, 'MetricsLive');
    const client = h.ws();
    const results: unknown[] = [];
    const unsubscribe = client.subscribe(
      { query: `subscription { eventPublished(types: ["${type}"]) { id } }` },
      { next: (value) => void results.push(value), error: () => undefined, complete: () => undefined },
    );
    await waitFor(
      async () => {
        if (results.length > 0) return true;
        await publishOrFail(h.gql, { type, current: {} });
        return false;
      },
      { what: 'the subscription receiving' },
    );
    // Readings are at most a second old.
    const open = await waitFor(
      async () => {
        const families = await scrape(metricsUrl(), h.operatorToken);
        return valueOf(families, 'herald_live_subscribers') >= 1 && families;
      },
      { what: 'the subscriber counted' },
    );
    expect(valueOf(open, 'herald_live_frames_sent_total')).toBeGreaterThanOrEqual(1);
    unsubscribe();
    await waitFor(
      async () => valueOf(await scrape(metricsUrl(), h.operatorToken), 'herald_live_subscribers') === 0,
      { what: 'the subscriber gone' },
    );
  });
});

describe('metrics on a port of their own', () => {
  it('answer there without a token, and not on the API port', async () => {
    const h = await startTestApp('embedded', { env: { HERALD_METRICS_PORT: '0' } });
    try {
      const withToken = { headers: { authorization: `Bearer ${h.operatorToken}` } };
      expect((await fetch(`${h.url}/metrics`, withToken)).status).toBe(404);
      expect(h.app.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const families = await scrape(h.app.metricsUrl!);
      expect(families.herald_graphql_operations_total).toBeDefined();
      expect((await fetch(h.app.metricsUrl!.replace('/metrics', '/other'))).status).toBe(404);
    } finally {
      await h.stop();
    }
  });

  it('are served by a worker, which has no API port', async () => {
    const { env, cleanup } = modeEnv('production');
    const config = loadConfig({ ...env, HERALD_METRICS_PORT: '0', LOG_LEVEL: 'silent' });
    const worker = await startApp(config, { api: false, worker: true }, createLogger('silent'));
    try {
      expect(worker.url).toBeUndefined();
      const families = await scrape(worker.metricsUrl!);
      expect(
        valueOf(families, 'herald_consumer_pending_messages', { consumer: 'deliverer', role: 'worker' }),
      ).toBe(0);
      expect(samples(families, 'herald_outbox_entries')).toHaveLength(4);
    } finally {
      await worker.stop();
      cleanup();
    }
    // Stopped, the port is let go.
    await expect(fetch(worker.metricsUrl!)).rejects.toThrow();
  });

  it('cannot share the API port', () => {
    expect(() => loadConfig({ PORT: '4100', HERALD_METRICS_PORT: '4100' })).toThrow(
      /HERALD_METRICS_PORT: must differ from PORT/,
    );
  });
});
