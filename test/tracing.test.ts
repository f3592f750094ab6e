import { randomBytes } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { loadConfig } from '../src/config.ts';
import { DeliveryHttpClient } from '../src/deliveries/http-client.ts';
import { inSpan, startTracing, tracesUrl } from '../src/tracing.ts';
import {
  httpExecutor,
  newEventType,
  publishOrFail,
  startTestApp,
  webhookTo,
  type Gql,
} from './support/app.ts';
import { post, sourceOf } from './support/inbound.ts';
import { recordingLogger } from './support/logs.ts';
import { CreateTenant } from './support/operations.ts';
import { run, started, type Running } from './support/processes.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

interface ExportedSpan {
  traceId: string;
  spanId: string;
  /** Empty for a root span. */
  parentSpanId: string;
  name: string;
  /** service.name of the process that exported it. */
  service: string;
  attributes: Record<string, unknown>;
}

interface KeyValue {
  key: string;
  value: Record<string, unknown>;
}

/** A stand-in OTLP/HTTP collector: keeps the spans of every JSON export to POST /v1/traces. */
async function startCollector() {
  const spans: ExportedSpan[] = [];
  const flat = (attributes: KeyValue[] = []) =>
    Object.fromEntries(attributes.map(({ key, value }) => [key, Object.values(value)[0]]));
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') return res.writeHead(404).end();
      const body = JSON.parse(Buffer.concat(chunks).toString()) as {
        resourceSpans: {
          resource: { attributes: KeyValue[] };
          scopeSpans: {
            spans: (Omit<ExportedSpan, 'service' | 'attributes'> & { attributes?: KeyValue[] })[];
          }[];
        }[];
      };
      for (const { resource, scopeSpans } of body.resourceSpans) {
        const service = String(flat(resource.attributes)['service.name']);
        for (const span of scopeSpans.flatMap((scope) => scope.spans)) {
          spans.push({
            ...span,
            parentSpanId: span.parentSpanId ?? '',
            service,
            attributes: flat(span.attributes),
          });
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    spans,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

/**
 * The spans of `root`'s trace along `names`, each the child of the one before: throws naming the
 * first link missing.
 */
function lineage(spans: ExportedSpan[], root: ExportedSpan, names: string[]): ExportedSpan[] {
  const found = [root];
  for (const name of names) {
    const parent = found.at(-1)!;
    const child = spans.find((s) => s.name === name && s.parentSpanId === parent.spanId);
    if (!child) throw new Error(`no ${name} span under ${parent.name}`);
    found.push(child);
  }
  return found;
}

/** Every span of one trace, once the attempt at its end was exported. */
const traceOf = (spans: ExportedSpan[], root: ExportedSpan | undefined) => {
  const trace = root ? spans.filter((s) => s.traceId === root.traceId) : [];
  return trace.some((s) => s.name === 'delivery.attempt') && trace;
};

const fromEventToAttempt = ['event.relay', 'dispatch', 'delivery.queue', 'delivery.attempt', 'POST'];

describe('tracing across an API and a worker process', () => {
  let collector: Awaited<ReturnType<typeof startCollector>>;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let processes: Running[] = [];
  let gql: Gql;
  let operator: Gql;

  beforeAll(async () => {
    collector = await startCollector();
    receiver = await startReceiver();
    const token = `hrld_test_${randomBytes(18).toString('base64url')}`;
    const env = {
      DATABASE_URL: inject('databaseUrl'),
      NATS_URL: inject('natsUrl'),
      HERALD_NATS_PREFIX: inject('natsPrefix'),
      HERALD_ADMIN_TOKEN: token,
      HERALD_SECRET_KEY: inject('secretKey'),
      ...toLocalReceivers,
      PORT: '0',
      LOG_LEVEL: 'info',
      OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
      // Spans leave each process within 100 ms, not the default 5 s.
      OTEL_BSP_SCHEDULE_DELAY: '100',
      // A failed attempt is tried again 100 ms later, from the database.
      HERALD_RETRY_SCHEDULE_MS: '0,100',
    };
    const [api, worker] = [run('api', env), run('worker', env)];
    processes = [api, worker];
    const [{ url }] = await Promise.all([started(api), started(worker)]);
    operator = httpExecutor(url!, token);
    const tenant = (await operator(CreateTenant, { input: { name: 'Traced' } })).data?.createTenant;
    if (tenant?.__typename !== 'CreateTenantPayload') throw new Error('createTenant failed');
    gql = httpExecutor(url!, tenant.token);
  });

  afterAll(async () => {
    for (const p of processes) p.child.kill('SIGTERM');
    expect(await Promise.all(processes.map((p) => p.exit))).toEqual(processes.map(() => 0));
    await receiver?.close();
    await collector?.close();
  });

  it('follows publishEvent through the stream and the queue to the attempt, in one trace', async () => {
    const type = await newEventType(operator, 'Traced');
    await webhookTo(gql, `${receiver.url}/published`, [type]);
    await publishOrFail(gql, { type, current: { total: 1 } });
    const delivered = await waitFor(() => receiver.received.find((r) => r.path === '/published'), {
      what: 'the delivery',
    });

    const trace = await waitFor(
      () =>
        traceOf(
          collector.spans,
          collector.spans.find(
            (s) => s.name === 'publishEvent' && s.attributes['herald.event.type'] === type,
          ),
        ),
      { what: 'the spans of the event, down to its attempt' },
    );
    const root = trace.find((s) => s.name === 'publishEvent')!;
    expect(root.parentSpanId).toBe('');
    const chain = lineage(trace, root, fromEventToAttempt);
    // The trace crosses from the API process (publish, and its relay right after the commit) to the worker.
    expect(chain.map((s) => [s.name, s.service])).toEqual([
      ['publishEvent', 'herald-api'],
      ['event.relay', 'herald-api'],
      ['dispatch', 'herald-worker'],
      ['delivery.queue', 'herald-worker'],
      ['delivery.attempt', 'herald-worker'],
      ['POST', 'herald-worker'],
    ]);
    const [, , dispatch, , attempt, request] = chain;
    expect(dispatch!.attributes).toMatchObject({
      'herald.event.id': root.attributes['herald.event.id'],
      'herald.event.type': type,
      'herald.deliveries': 1,
    });
    expect(attempt!.attributes).toMatchObject({
      'herald.attempt': 1,
      'herald.delivery.status': 'SUCCEEDED',
      'herald.outcome': '2xx',
    });
    expect(request!.attributes).toMatchObject({
      'http.request.method': 'POST',
      'http.response.status_code': 200,
    });
    // Nothing of Herald's trace reaches the receiver unless configured.
    expect(delivered.headers.traceparent).toBeUndefined();
    expect(delivered.headers.tracestate).toBeUndefined();
  });

  it("keeps a retry queued later from the database in its event's trace", async () => {
    const type = await newEventType(operator, 'Traced retry');
    await webhookTo(gql, `${receiver.url}/retried`, [type]);
    let calls = 0;
    receiver.reply((req, res) => res.writeHead(req.path === '/retried' && ++calls === 1 ? 503 : 200).end());
    await publishOrFail(gql, { type, current: { total: 2 } });
    await waitFor(() => calls >= 2, { what: 'the retry' });

    const trace = await waitFor(
      () => {
        const spans = traceOf(
          collector.spans,
          collector.spans.find(
            (s) => s.name === 'publishEvent' && s.attributes['herald.event.type'] === type,
          ),
        );
        return spans && spans.filter((s) => s.name === 'POST').length === 2 && spans;
      },
      { what: 'both attempts in the trace' },
    );
    const root = trace.find((s) => s.name === 'publishEvent')!;
    const attempts = trace.filter((s) => s.name === 'delivery.attempt');
    expect(attempts.map((s) => s.attributes['herald.attempt']).sort()).toEqual([1, 2]);
    // The retry's queueing is a child of the publish the event's row remembers.
    const retry = attempts.find((s) => s.attributes['herald.attempt'] === 2)!;
    const queued = trace.find((s) => s.spanId === retry.parentSpanId)!;
    expect(queued).toMatchObject({
      name: 'delivery.queue',
      parentSpanId: root.spanId,
      service: 'herald-worker',
    });
  });

  it("starts a trace of its own for an inbound request, whatever the sender's, and follows its event", async () => {
    const type = await newEventType(operator, 'Traced inbound');
    await webhookTo(gql, `${receiver.url}/routed`, [type]);
    const source = await sourceOf(gql, {
      name: 'Traced',
      status: 'DEPLOYED',
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
    });
    const senders = randomBytes(16).toString('hex');
    const accepted = await post(source.url, JSON.stringify({ n: 1 }), {
      traceparent: `00-${senders}-${randomBytes(8).toString('hex')}-01`,
    });
    expect(accepted).toMatchObject({ status: 200, body: { outcome: 'ROUTED' } });
    await waitFor(() => receiver.received.some((r) => r.path === '/routed'), { what: 'the routed delivery' });

    const trace = await waitFor(
      () =>
        traceOf(
          collector.spans,
          collector.spans.find(
            (s) => s.name === 'inbound.receive' && s.attributes['herald.inbound.outcome'] === 'ROUTED',
          ),
        ),
      { what: 'the spans of the inbound request, down to its attempt' },
    );
    const root = trace.find((s) => s.name === 'inbound.receive')!;
    expect(root).toMatchObject({ parentSpanId: '', service: 'herald-api' });
    expect(root.traceId).not.toBe(senders);
    expect(collector.spans.some((s) => s.traceId === senders)).toBe(false);
    const [, , dispatch] = lineage(trace, root, fromEventToAttempt);
    expect(dispatch!.service).toBe('herald-worker');
  });
});

describe('trace context sent to endpoints', () => {
  it('goes out only from a client configured to send it, naming the request span as parent', async () => {
    const collector = await startCollector();
    const receiver = await startReceiver();
    const config = loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: collector.url, OTEL_BSP_SCHEDULE_DELAY: '100' });
    const tracing = startTracing(config.tracing, 'test', recordingLogger().logger)!;
    const policy = { allowHttp: true, allowedCidrs: ['127.0.0.0/8'] };
    const quiet = new DeliveryHttpClient(policy);
    const telling = new DeliveryHttpClient(policy, { propagateTrace: true });
    try {
      const traceId = await inSpan('attempts', {}, async (span) => {
        await quiet.post(`${receiver.url}/quiet`, {}, '{}');
        await telling.post(`${receiver.url}/told`, {}, '{}');
        return span.spanContext().traceId;
      });
      const headersAt = (path: string) => receiver.received.find((r) => r.path === path)!.headers;
      expect(headersAt('/quiet').traceparent).toBeUndefined();
      const told = String(headersAt('/told').traceparent);
      expect(told).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));

      const requests = await waitFor(
        () => {
          const posts = collector.spans.filter((s) => s.traceId === traceId && s.name === 'POST');
          return posts.length === 2 && posts;
        },
        { what: 'the two request spans' },
      );
      expect(requests.find((s) => s.spanId === told.split('-')[2])).toMatchObject({ service: 'herald-test' });
    } finally {
      await tracing.stop();
      await Promise.all([quiet.close(), telling.close(), receiver.close(), collector.close()]);
    }
  });

  it("goes out from the pipeline when HERALD_PROPAGATE_TRACE_TO_ENDPOINTS is true, in the event's trace", async () => {
    const collector = await startCollector();
    const receiver = await startReceiver();
    const h = await startTestApp('production', {
      env: {
        ...toLocalReceivers,
        OTEL_EXPORTER_OTLP_ENDPOINT: collector.url,
        OTEL_BSP_SCHEDULE_DELAY: '100',
        HERALD_PROPAGATE_TRACE_TO_ENDPOINTS: 'true',
      },
    });
    try {
      const type = await newEventType(h.operator, 'Told');
      await webhookTo(h.gql, `${receiver.url}/told`, [type]);
      await publishOrFail(h.gql, { type, current: {} });
      const delivered = await waitFor(() => receiver.received.find((r) => r.path === '/told'), {
        what: 'the delivery',
      });
      const [, traceId, spanId] = String(delivered.headers.traceparent).split('-');
      const request = await waitFor(() => collector.spans.find((s) => s.spanId === spanId), {
        what: 'the span the receiver was told of',
      });
      expect(request).toMatchObject({ name: 'POST', traceId });
      await waitFor(() => collector.spans.some((s) => s.traceId === traceId && s.name === 'publishEvent'), {
        what: 'the publish in the same trace',
      });
    } finally {
      await h.stop();
      await Promise.all([receiver.close(), collector.close()]);
    }
  });

  it('is off unless an OTLP endpoint is configured', () => {
    const { logger } = recordingLogger();
    expect(startTracing(loadConfig({}).tracing, 'test', logger)).toBeNull();
    for (const disabled of ['true', 'TRUE']) {
      const config = loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:4318',
        OTEL_SDK_DISABLED: disabled,
      });
      expect(startTracing(config.tracing, 'test', logger), disabled).toBeNull();
    }
  });

  it("sends traces to the endpoint's /v1/traces, keeping its query, or to the traces endpoint as given", () => {
    const urlOf = (env: Record<string, string>) => tracesUrl(loadConfig(env).tracing);
    expect(urlOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toBe('http://c:4318/v1/traces');
    expect(urlOf({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318/otlp/?k=1' })).toBe(
      'http://c:4318/otlp/v1/traces?k=1',
    );
    expect(
      urlOf({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://t:1/x',
      }),
    ).toBe('http://t:1/x');
  });

  it('leaves a tracer provider already registered alone, and stops in time when the collector is gone', async () => {
    const { logger, lines } = recordingLogger();
    // Nothing listens on port 1: every export is refused.
    const config = loadConfig({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:1',
      OTEL_BSP_SCHEDULE_DELAY: '60000',
    });
    const first = startTracing(config.tracing, 'first', logger)!;
    expect(startTracing(config.tracing, 'second', logger)).toBeNull();
    expect(lines.map((line) => line.msg)).toContain(
      'tracing: this process has a tracer provider already; its spans go there',
    );
    await inSpan('lost', {}, async () => undefined);
    const stopping = performance.now();
    await first.stop();
    expect(performance.now() - stopping).toBeLessThan(5_000);
    expect(lines.map((line) => line.msg)).toContain('tracing: the last spans could not be exported');
  });
});
