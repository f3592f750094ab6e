/**
 * S1 (publishEvent) and S6 (50-row list queries): HTTP requests at a constant arrival rate over one
 * keep-alive pool, against Herald's API processes and, in the same run, against a plain node:http
 * process doing the same essential work (bench/raw/publish.ts, bench/raw/list.ts).
 */
import { fork } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { Pool } from 'undici';
import {
  benchSpace,
  heraldEnv,
  rawId,
  services,
  setUpTenant,
  startHerald,
  type HeraldProcess,
} from '../lib/herald.ts';
import {
  CpuMeter,
  openLoad,
  percentiles,
  serverProcesses,
  type Percentiles,
  type Row,
} from '../lib/measure.ts';
import { payload } from '../lib/receiver.ts';
import { streams } from '../../src/bus/contracts.ts';
import { NatsBus } from '../../src/bus/nats.ts';
import { createLogger } from '../../src/logger.ts';

export interface RequestOptions {
  /** Requests per second. */
  rate: number;
  warmupMs: number;
  steadyMs: number;
}

export interface RequestRun {
  /** Accepted answers per second within the steady window. */
  throughput: number;
  /** From a request's scheduled send time to its answer. */
  latency: Percentiles;
  cpu: Record<string, number>;
  ledger: {
    sent: number;
    ok: number;
    failed: number;
    /** Still unanswered when the drain gave up. */
    unanswered: number;
    /** S1: messages on the stream, which must equal `ok`. */
    published?: number;
  };
}

interface Target {
  /** Requests go round-robin over these, as a load balancer would spread them. */
  urls: string[];
  token: string;
  /** Processes whose CPU is measured, by name. */
  pids: Record<string, number>;
}

interface Call {
  path: string;
  body?: unknown;
}

const encoder = new TextEncoder();
const type = 'bench.order.created';

/**
 * Sends `call(scheduledAt)` at a constant rate and counts an answer as ok only when `accept` takes
 * it (a 2xx and, for GraphQL, no errors and the expected data); the first refusal is printed.
 * Latency covers every request scheduled in the steady window: one refused or not answered by the
 * end of the drain counts as infinitely late, so a server that falls behind shows as ∞, not as
 * the few fast answers it managed.
 */
async function requestLoad(
  target: Target,
  options: RequestOptions,
  call: (scheduledAt: number) => Call,
  accept: (status: number, body: unknown) => boolean,
): Promise<RequestRun> {
  const pools = target.urls.map(
    (url) => new Pool(url, { connections: 128 / target.urls.length, keepAliveTimeout: 60_000 }),
  );
  const cpu = new CpuMeter({ ...target.pids, bench: process.pid, ...serverProcesses });
  let cpuUse: Record<string, number> = {};
  let reported = false;
  let start: number | undefined;
  let inSteady = 0;
  const latencies: number[] = [];
  try {
    const load = await openLoad({
      ...options,
      drainMs: 5_000,
      onSteady: { begin: () => cpu.begin(), end: () => (cpuUse = cpu.end()) },
      send: async (i, scheduledAt) => {
        start ??= scheduledAt - (i * 1000) / options.rate;
        const steady = scheduledAt >= start + options.warmupMs;
        if (steady) inSteady++;
        const { path, body } = call(performance.timeOrigin + scheduledAt);
        const response = await pools[i % pools.length]!.request({
          path,
          method: body === undefined ? 'GET' : 'POST',
          headers: { 'content-type': 'application/json', authorization: `Bearer ${target.token}` },
          body: body === undefined ? undefined : encoder.encode(JSON.stringify(body)),
        });
        const text = await response.body.text();
        const parsed = response.statusCode === 200 ? (JSON.parse(text) as unknown) : null;
        if (!accept(response.statusCode, parsed)) {
          if (!reported) console.error(`    refused: ${response.statusCode} ${text.slice(0, 500)}`);
          reported = true;
          throw new Error('refused');
        }
        if (steady) latencies.push(performance.now() - scheduledAt);
      },
    });
    const late = Array.from({ length: inSteady - latencies.length }, () => Infinity);
    return {
      throughput: load.throughput,
      latency: percentiles([...latencies, ...late]),
      cpu: cpuUse,
      ledger: {
        sent: load.sent,
        ok: load.completed,
        failed: load.failed,
        unanswered: load.sent - load.completed - load.failed,
      },
    };
  } finally {
    await Promise.all(pools.map((pool) => pool.destroy()));
  }
}

/**
 * Herald's API as one process per core, the way it is deployed behind a load balancer: started one
 * after the other, so the first applies the migrations.
 */
async function startApi(env: Record<string, string>) {
  const apis: HeraldProcess[] = [];
  const stop = () => Promise.all(apis.map((api) => api.stop()));
  try {
    for (let i = 0; i < availableParallelism(); i++) apis.push(await startHerald('api', env));
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    url: apis[0]!.url!,
    target: (token: string): Target => ({
      urls: apis.map((api) => api.url!),
      token,
      pids: Object.fromEntries(apis.map((api, i) => [`api ${i + 1}`, api.pid])),
    }),
    stop,
  };
}

/** Starts a raw baseline (bench/raw/<name>.ts) as its own process; it answers with its URL. */
async function startRaw(name: string, args: string[]) {
  const child = fork(fileURLToPath(new URL(`../raw/${name}.ts`, import.meta.url)), args, {
    stdio: 'inherit',
  });
  const url = await new Promise<string>((resolve, reject) => {
    child.once('message', (message) => resolve(message as string));
    child.once('exit', (code) => reject(new Error(`the raw ${name} baseline exited with ${code}`)));
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return {
    url,
    pid: child.pid!,
    async stop() {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Messages on a stream. */
async function streamMessages(stream: string): Promise<number> {
  const nc = await connect({ servers: services.nats });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

function requestRow(scenario: string, system: string, run: RequestRun, baseline?: RequestRun): Row {
  const { ledger } = run;
  const balanced =
    ledger.failed === 0 &&
    ledger.unanswered === 0 &&
    (ledger.published === undefined || ledger.published === ledger.ok);
  // The servers' own processes: PostgreSQL and NATS are shown, but S1's raw handler stores no row.
  const cpuTotal = (r: RequestRun) =>
    Object.entries(r.cpu).reduce(
      (sum, [name, pct]) => (name === 'bench' || name in serverProcesses ? sum : sum + pct),
      0,
    );
  return {
    scenario,
    system,
    throughput: run.throughput,
    unit: 'requests/s',
    ...run.latency,
    cpu: Object.entries(run.cpu)
      .map(([name, pct]) => `${name} ${pct}%`)
      .join(', '),
    ledger:
      `${ledger.sent} sent = ${ledger.ok} ok + ${ledger.failed} failed + ${ledger.unanswered} unanswered` +
      (ledger.published === undefined ? '' : `; ${ledger.published} on the stream`) +
      (balanced ? '' : ' — VOID'),
    ratio: baseline
      ? `${Math.round((run.throughput / baseline.throughput) * 100)} %, ` +
        `${(cpuTotal(run) / run.throughput / (cpuTotal(baseline) / baseline.throughput)).toFixed(1)}× CPU per request`
      : '',
  };
}

const PUBLISH = `mutation ($input: PublishEventInput!) {
  publishEvent(input: $input) { __typename ... on PublishEventPayload { duplicate event { id } } }
}`;

/** S1: publishEvent mutations of 1 KB events, then the raw handler publishing the same. */
export async function publishEvents(options: RequestOptions): Promise<Row[]> {
  const scenario = `S1 publishEvent at ${options.rate}/s`;
  const raw = await rawPublish(options);
  const herald = await heraldPublish(options);
  return [requestRow(scenario, 'raw', raw), requestRow(scenario, 'Herald', herald, raw)];
}

async function heraldPublish(options: RequestOptions): Promise<RequestRun> {
  const space = await benchSpace('s1');
  const env = heraldEnv(space);
  const api = await startApi(env);
  try {
    const { token } = await setUpTenant(api.url, env.HERALD_ADMIN_TOKEN, { type, webhookUrls: [] });
    const run = await requestLoad(
      api.target(token),
      options,
      (t) => ({
        path: '/graphql',
        body: { query: PUBLISH, variables: { input: { type, current: payload(t) } } },
      }),
      (status, body) => {
        const result = (
          body as { data?: { publishEvent?: { __typename: string; duplicate: boolean } } } | null
        )?.data?.publishEvent;
        return status === 200 && result?.__typename === 'PublishEventPayload' && !result.duplicate;
      },
    );
    run.ledger.published = await streamMessages(`${space.prefix.toUpperCase()}_EVENTS`);
    return run;
  } finally {
    await api.stop();
    await space.drop();
  }
}

async function rawPublish(options: RequestOptions): Promise<RequestRun> {
  const space = await benchSpace('s1raw');
  // The events stream exactly as Herald declares it, with Herald's default settings.
  const events = streams(space.prefix).events;
  const bus = await NatsBus.connect(
    { url: services.nats, replicas: 1, duplicateWindowMs: 600_000, name: 'bench-raw' },
    createLogger('warn'),
  );
  await bus.declareStreams([events]);
  await bus.close();
  const tenantId = '00000000-0000-7000-8000-00000000be01';
  const token = 'hrld_raw_bench_token';
  const server = await startRaw('publish', [services.nats, space.prefix, tenantId, token]);
  try {
    const run = await requestLoad(
      { urls: [server.url], token, pids: { raw: server.pid } },
      options,
      (t) => ({ path: '/events', body: { type, current: payload(t) } }),
      (status, body) => status === 200 && (body as { duplicate?: boolean }).duplicate === false,
    );
    run.ledger.published = await streamMessages(events.name);
    return run;
  } finally {
    await server.stop();
    await space.drop();
  }
}

const WEBHOOKS = `{
  webhooks(first: 50) {
    edges { cursor node { id name url isActive subscribedEvents externalId managedBy lastSuccessAt
      lastFailureAt disabledAt disabledReason createdAt updatedAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const AUDIT_LOGS = `{
  auditLogs(first: 50) {
    edges { cursor node { id action executor { type id name } related { type id name } relationName
      relationId metadata ip userAgent requestId sequence previousHash hash createdAt } }
    pageInfo { hasNextPage endCursor }
  }
}`;

const UPDATE = `mutation ($input: UpdateWebhookInput!) { updateWebhook(input: $input) { __typename } }`;

/**
 * A tenant with 100 webhooks (the default plan limit) and about 500 audit entries, all made
 * through the API: one entry per webhook created, one per update. A page costs the same however
 * many rows follow it (an index range with a limit), so more would only lengthen the seeding.
 */
async function seedLists(url: string, adminToken: string) {
  const tenant = await setUpTenant(url, adminToken, {
    type,
    webhookUrls: Array.from({ length: 100 }, (_, i) => `http://127.0.0.1:9/hooks/${i}`),
  });
  const updates = Array.from({ length: 400 }, (_, i) => i);
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = updates.pop(); i !== undefined; i = updates.pop()) {
        const id = tenant.webhookIds[i % tenant.webhookIds.length]!;
        await tenant.gql(UPDATE, { input: { id, name: `Order hook ${i}` } });
      }
    }),
  );
  return tenant;
}

/** A full page from Herald: no errors, 50 edges, more to follow. */
const fullConnection = (field: string) => (status: number, body: unknown) => {
  const page = (
    body as { data?: Record<string, { edges: unknown[]; pageInfo: { hasNextPage: boolean } }> } | null
  )?.data?.[field];
  return (
    status === 200 &&
    !(body as { errors?: unknown }).errors &&
    page?.edges.length === 50 &&
    page.pageInfo.hasNextPage
  );
};

/** A full page from the raw handler. */
const fullPage = (status: number, body: unknown) =>
  status === 200 &&
  (body as { items: unknown[] }).items.length === 50 &&
  (body as { hasNextPage: boolean }).hasNextPage;

/** S6: webhooks(first: 50), then auditLogs(first: 50), each against raw SQL + JSON.stringify. */
export async function listQueries(options: RequestOptions): Promise<Row[]> {
  const space = await benchSpace('s6');
  const env = heraldEnv(space);
  const api = await startApi(env);
  let server: Awaited<ReturnType<typeof startRaw>> | undefined;
  try {
    const tenant = await seedLists(api.url, env.HERALD_ADMIN_TOKEN);
    const { token } = tenant;
    server = await startRaw('list', [space.databaseUrl, rawId(tenant.tenantId), token]);
    const rows: Row[] = [];
    for (const [name, query, path] of [
      ['webhooks', WEBHOOKS, '/webhooks'],
      ['auditLogs', AUDIT_LOGS, '/audit-logs'],
    ] as const) {
      const scenario = `S6 ${name}(first: 50) at ${options.rate}/s`;
      const raw = await requestLoad(
        { urls: [server.url], token, pids: { raw: server.pid } },
        options,
        () => ({ path }),
        fullPage,
      );
      const herald = await requestLoad(
        api.target(token),
        options,
        () => ({ path: '/graphql', body: { query } }),
        fullConnection(name),
      );
      rows.push(requestRow(scenario, 'raw', raw), requestRow(scenario, 'Herald', herald, raw));
    }
    return rows;
  } finally {
    await server?.stop();
    await api.stop();
    await space.drop();
  }
}
