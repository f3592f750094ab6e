import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { request } from 'undici';
import { until } from './measure.ts';

/** Where the PostgreSQL server and the NATS server (a comma-separated list for a cluster) are. */
export interface Services {
  postgres: string;
  nats: string;
}

export const services: Services = {
  postgres: process.env.BENCH_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432',
  nats: process.env.BENCH_NATS ?? '127.0.0.1:4222',
};

/**
 * One statement on the server's maintenance database, over a connection of its own: a connection
 * held for the whole run would not survive a restart of the server under test.
 */
async function adminQuery(postgres: string, sql: string): Promise<void> {
  const admin = new pg.Client({ connectionString: `${postgres}/postgres` });
  await admin.connect();
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

/** A database and a stream prefix of the run's own on `at`, removed by `drop`. */
export async function benchSpace(name: string, at: Services = services) {
  const id = `${name}_${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const database = `herald_bench_${id}`;
  await adminQuery(at.postgres, `create database "${database}"`);
  return {
    databaseUrl: `${at.postgres}/${database}`,
    natsUrl: at.nats,
    prefix: `b${id}`.toLowerCase(),
    async drop() {
      await adminQuery(at.postgres, `drop database if exists "${database}" with (force)`);
      const nc = await connect({ servers: at.nats.split(',') });
      const jsm = await jetstreamManager(nc);
      for await (const stream of jsm.streams.list()) {
        if (stream.config.name.startsWith(`B${id}`.toUpperCase()))
          await jsm.streams.delete(stream.config.name);
      }
      await nc.close();
    },
  };
}

/** The database id in a relay global id. */
export const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;

export interface HeraldProcess {
  child: ChildProcess;
  pid: number;
  url: string | undefined;
  /** Its metrics, when HERALD_METRICS_PORT gives them a port of their own. */
  metricsUrl: string | undefined;
  /** The last lines the process wrote (its JSON log, and stderr), to show when a run goes wrong. */
  tail(): string[];
  /** Kills it with SIGKILL, as a crash would, and waits for it to be gone. */
  kill(): Promise<void>;
  stop(): Promise<void>;
}

const entry = (role: string) => fileURLToPath(new URL(`../../src/main/${role}.ts`, import.meta.url));
const TAIL_LINES = 200;

/** Starts `src/main/<role>.ts` as its own process and waits for it to say it started. */
export async function startHerald(
  role: 'api' | 'worker' | 'all',
  env: Record<string, string>,
): Promise<HeraldProcess> {
  const child = spawn(process.execPath, [entry(role)], {
    env: { PATH: process.env.PATH, LOG_LEVEL: 'info', PORT: '0', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let url: string | undefined;
  let metricsUrl: string | undefined;
  let started = false;
  const lines: string[] = [];
  const keep = (line: string) => {
    lines.push(line);
    if (lines.length > TAIL_LINES) lines.shift();
  };
  createInterface({ input: child.stdout }).on('line', (line) => {
    keep(line);
    if (started || !line.includes('"herald started"')) return;
    ({ url, metrics: metricsUrl } = JSON.parse(line) as { url?: string; metrics?: string });
    started = true;
  });
  createInterface({ input: child.stderr }).on('line', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (!(await until(() => started || child.exitCode !== null, 60_000)) || !started) {
    child.kill('SIGKILL');
    throw new Error(`herald ${role} did not start: ${lines.slice(-20).join('\n')}`);
  }
  return {
    child,
    pid: child.pid!,
    url,
    metricsUrl,
    tail: () => [...lines],
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, until(() => false, 15_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/**
 * The environment every Herald process of a bench shares. BENCH_CPU_PROF=<dir> makes each write a
 * V8 CPU profile into <dir> when it stops (summarise it with bench/profile.ts).
 */
export function heraldEnv(
  space: { databaseUrl: string; natsUrl: string; prefix: string },
  extra: Record<string, string> = {},
) {
  return {
    // As the Dockerfile runs it: libraries take their production paths (graphql-js's instanceOf).
    NODE_ENV: 'production',
    DATABASE_URL: space.databaseUrl,
    NATS_URL: space.natsUrl,
    HERALD_NATS_PREFIX: space.prefix,
    HERALD_ADMIN_TOKEN: `hrld_bench_${randomBytes(18).toString('base64url')}`,
    HERALD_SECRET_KEY: randomBytes(32).toString('base64'),
    HERALD_ALLOW_HTTP: 'true',
    HERALD_ALLOWED_CIDRS: '127.0.0.0/8',
    // The bench measures capacity: one token offers thousands of requests a second.
    HERALD_RATE_LIMIT_PER_SECOND: '1000000',
    ...(process.env.BENCH_CPU_PROF
      ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${process.env.BENCH_CPU_PROF}` }
      : {}),
    ...extra,
  };
}

/** A GraphQL client over one keep-alive pool; with `timeoutMs`, a request unanswered by then fails. */
export function graphqlClient(url: string, token: string, options: { timeoutMs?: number } = {}) {
  return async <T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}) => {
    const response = await request(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
      signal: options.timeoutMs ? AbortSignal.timeout(options.timeoutMs) : null,
    });
    const body = (await response.body.json()) as { data?: T; errors?: { message: string }[] };
    if (response.statusCode !== 200 || body.errors) {
      throw new Error(`GraphQL ${response.statusCode}: ${JSON.stringify(body.errors ?? body)}`);
    }
    return body.data!;
  };
}

/** A tenant with a token holding every scope, an event type, and webhooks to `urls`. */
export async function setUpTenant(
  url: string,
  adminToken: string,
  options: { type: string; webhookUrls: string[] },
) {
  const operator = graphqlClient(url, adminToken);
  await operator(
    `mutation ($input: UpsertEventTypeInput!) { upsertEventType(input: $input) { __typename } }`,
    { input: { name: options.type, group: 'Bench' } },
  );
  const created = await operator<{ createTenant: { token: string; tenant: { id: string } } }>(
    `mutation { createTenant(input: { name: "Bench" }) { ... on CreateTenantPayload { token tenant { id } } } }`,
  );
  const { token } = created.createTenant;
  const gql = graphqlClient(url, token);
  const webhookIds: string[] = [];
  for (const webhookUrl of options.webhookUrls) {
    const made = await gql<{ createWebhook: { webhook: { id: string } } }>(
      `mutation ($input: CreateWebhookInput!) { createWebhook(input: $input) { ... on CreateWebhookPayload { webhook { id } } } }`,
      { input: { url: webhookUrl, subscribedEvents: [options.type] } },
    );
    webhookIds.push(made.createWebhook.webhook.id);
  }
  return { token, tenantId: created.createTenant.tenant.id, gql, webhookIds };
}
