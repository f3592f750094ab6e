import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { request } from 'undici';
import { until } from './measure.ts';

export const services = {
  postgres: process.env.BENCH_POSTGRES ?? 'postgresql://postgres@127.0.0.1:5432',
  nats: process.env.BENCH_NATS ?? '127.0.0.1:4222',
};

/** A database and a stream prefix of the run's own, removed by `drop`. */
export async function benchSpace(name: string) {
  const id = `${name}_${Date.now().toString(36)}${randomBytes(2).toString('hex')}`;
  const database = `herald_bench_${id}`;
  const admin = new pg.Client({ connectionString: `${services.postgres}/postgres` });
  await admin.connect();
  await admin.query(`create database "${database}"`);
  return {
    databaseUrl: `${services.postgres}/${database}`,
    prefix: `b${id}`.toLowerCase(),
    async drop() {
      await admin.query(`drop database if exists "${database}" with (force)`);
      await admin.end();
      const nc = await connect({ servers: services.nats });
      const jsm = await jetstreamManager(nc);
      for await (const stream of jsm.streams.list()) {
        if (stream.config.name.startsWith(`B${id}`.toUpperCase()))
          await jsm.streams.delete(stream.config.name);
      }
      await nc.close();
    },
  };
}

export interface HeraldProcess {
  child: ChildProcess;
  pid: number;
  url: string | undefined;
  stop(): Promise<void>;
}

const entry = (role: string) => fileURLToPath(new URL(`../../src/main/${role}.ts`, import.meta.url));

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
  let started = false;
  let errors = '';
  let buffer = '';
  child.stdout.on('data', (chunk: Buffer) => {
    if (started) return;
    buffer += chunk.toString();
    for (const line of buffer.split('\n')) {
      if (!line.includes('"herald started"')) continue;
      url = (JSON.parse(line) as { url?: string }).url;
      started = true;
    }
  });
  child.stderr.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  if (!(await until(() => started || child.exitCode !== null, 60_000)) || !started) {
    child.kill('SIGKILL');
    throw new Error(`herald ${role} did not start: ${errors.slice(-2000)}`);
  }
  return {
    child,
    pid: child.pid!,
    url,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, until(() => false, 15_000)]);
      if (child.exitCode === null) child.kill('SIGKILL');
    },
  };
}

/** The environment every Herald process of a bench shares. */
export function heraldEnv(
  space: { databaseUrl: string; prefix: string },
  extra: Record<string, string> = {},
) {
  return {
    DATABASE_URL: space.databaseUrl,
    NATS_URL: services.nats,
    HERALD_NATS_PREFIX: space.prefix,
    HERALD_ADMIN_TOKEN: `hrld_bench_${randomBytes(18).toString('base64url')}`,
    HERALD_SECRET_KEY: randomBytes(32).toString('base64'),
    HERALD_ALLOW_HTTP: 'true',
    HERALD_ALLOWED_CIDRS: '127.0.0.0/8',
    ...extra,
  };
}

/** A GraphQL client over one keep-alive pool. */
export function graphqlClient(url: string, token: string) {
  return async <T = Record<string, unknown>>(query: string, variables: Record<string, unknown> = {}) => {
    const response = await request(`${url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
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

/** The database id in a relay global id. */
export const rawId = (globalId: string) => Buffer.from(globalId, 'base64').toString().split(':')[1]!;
