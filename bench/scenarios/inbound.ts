/**
 * S8 (inbound requests): signed webhook POSTs, as many as a fixed number of senders can make back
 * to back (the offered load is always more than either side takes: capacity, not a ratio of two
 * systems keeping up), against Herald's API process receiving them at an inbound source and, in
 * the same run, against a plain node:http process doing the same durable work
 * (bench/raw/inbound.ts). A run counts only answers whose request is stored and whose event is
 * on the stream afterwards; anything else makes it VOID.
 */
import { fork } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { Pool } from 'undici';
import { streams } from '../../src/bus/contracts.ts';
import {
  benchSpace,
  graphqlClient,
  heraldEnv,
  rawId,
  services,
  setUpTenant,
  startHerald,
} from '../lib/herald.ts';
import { CpuMeter, percentiles, serverProcesses, until, type Percentiles } from '../lib/measure.ts';

export interface InboundOptions {
  /** Requests in flight at once, each sender posting again as soon as it is answered. */
  senders: number;
  warmupMs: number;
  steadyMs: number;
}

export interface InboundRun {
  throughput: number;
  latency: Percentiles;
  cpu: Record<string, number>;
  ledger: { answered: number; failed: number; stored: number; published: number; balanced: boolean };
}

const TYPE = 'bench.inbound.received';
const secret = randomBytes(24).toString('base64url');
/** A ~1 KiB JSON body, different for every request. */
const bodyOf = (n: number) =>
  JSON.stringify({ id: `evt_${n}`, type: 'order.created', data: { n, lines: 'x'.repeat(900) } });

/** Posts signed requests from `senders` loops for warm-up plus steady time; counts the steady window. */
async function drive(url: string, options: InboundOptions, pids: Record<string, number>) {
  const { origin, pathname } = new URL(url);
  const pool = new Pool(origin, { connections: options.senders, keepAliveTimeout: 60_000 });
  const cpu = new CpuMeter({ ...pids, bench: process.pid, ...serverProcesses });
  const started = performance.now();
  const steadyFrom = started + options.warmupMs;
  const end = steadyFrom + options.steadyMs;
  let n = 0;
  let answered = 0;
  let failed = 0;
  let inSteady = 0;
  const latencies: number[] = [];
  let cpuUse: Record<string, number> = {};
  const meter = (async () => {
    await until(() => performance.now() >= steadyFrom, options.warmupMs + 1_000);
    cpu.begin();
    await until(() => performance.now() >= end, options.steadyMs + 1_000);
    cpuUse = cpu.end();
  })();
  const sender = async () => {
    while (performance.now() < end) {
      const body = bodyOf(n++);
      const sentAt = performance.now();
      const response = await pool.request({
        path: pathname,
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-signature': createHmac('sha256', secret).update(body).digest('hex'),
          'x-delivery-id': `d-${n}`,
        },
        body,
      });
      await response.body.text();
      if (response.statusCode === 200) answered++;
      else failed++;
      if (sentAt >= steadyFrom && performance.now() <= end && response.statusCode === 200) {
        inSteady++;
        latencies.push(performance.now() - sentAt);
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.senders }, sender));
    await meter;
  } finally {
    await pool.destroy();
  }
  return {
    throughput: Math.round(inSteady / (options.steadyMs / 1000)),
    latency: percentiles(latencies),
    cpu: cpuUse,
    answered,
    failed,
  };
}

async function streamMessages(stream: string): Promise<number> {
  const nc = await connect({ servers: services.nats });
  try {
    return (await (await jetstreamManager(nc)).streams.info(stream)).state.messages;
  } finally {
    await nc.close();
  }
}

async function count(databaseUrl: string, sql: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    return Number((await client.query<{ n: string }>(sql)).rows[0]!.n);
  } finally {
    await client.end();
  }
}

/** The ledger once the stream has caught up (publishes after the answer may still be landing). */
async function ledger(
  answered: number,
  failed: number,
  stored: () => Promise<number>,
  published: () => Promise<number>,
) {
  await until(async () => (await published()) >= answered, 15_000);
  const [s, p] = [await stored(), await published()];
  return {
    answered,
    failed,
    stored: s,
    published: p,
    balanced: failed === 0 && s === answered && p === answered,
  };
}

export async function heraldInbound(options: InboundOptions): Promise<InboundRun> {
  const space = await benchSpace('s8');
  const env = heraldEnv(space, { HERALD_INBOUND_REQUESTS_PER_SECOND: '1000000' });
  const api = await startHerald('api', env);
  try {
    const tenant = await setUpTenant(api.url!, env.HERALD_ADMIN_TOKEN, { type: TYPE, webhookUrls: [] });
    const gql = graphqlClient(api.url!, tenant.token);
    const created = await gql<{ createInboundSource: { source?: { id: string; url: string } } }>(
      `mutation ($input: CreateInboundSourceInput!) { createInboundSource(input: $input) {
         ... on InboundSourcePayload { source { id url } } } }`,
      {
        input: {
          name: 'Bench',
          status: 'DEPLOYED',
          verification: { preset: 'HMAC', secret, hmac: { header: 'x-signature' } },
          eventType: { fixed: TYPE },
          idempotency: { header: 'x-delivery-id' },
        },
      },
    );
    const source = created.createInboundSource.source!;
    const run = await drive(source.url, options, { api: api.pid });
    const sourceId = rawId(source.id);
    return {
      ...run,
      ledger: await ledger(
        run.answered,
        run.failed,
        () =>
          count(
            space.databaseUrl,
            `select count(*) as n from inbound_requests where source_id = '${sourceId}' and outcome = 'ROUTED'`,
          ),
        () => streamMessages(streams(space.prefix).events.name),
      ),
    };
  } finally {
    await api.stop();
    await space.drop();
  }
}

export async function rawInbound(options: InboundOptions): Promise<InboundRun> {
  const space = await benchSpace('s8raw');
  const name = `${space.prefix.toUpperCase()}_RAW_INBOUND`;
  const subject = `${space.prefix}.rawin.events`;
  const nc = await connect({ servers: services.nats });
  await (await jetstreamManager(nc)).streams.add({ name, subjects: [`${space.prefix}.rawin.>`] });
  await nc.close();
  const child = fork(
    fileURLToPath(new URL('../raw/inbound.ts', import.meta.url)),
    [space.databaseUrl, services.nats, subject, secret],
    { stdio: 'inherit' },
  );
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    const url = await new Promise<string>((resolve, reject) => {
      child.once('message', (message) => resolve(message as string));
      child.once('exit', (code) => reject(new Error(`the raw inbound baseline exited with ${code}`)));
    });
    const run = await drive(`${url}/in/raw`, options, { raw: child.pid! });
    return {
      ...run,
      ledger: await ledger(
        run.answered,
        run.failed,
        () => count(space.databaseUrl, 'select count(*) as n from raw_inbound_requests'),
        () => streamMessages(name),
      ),
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
    await space.drop();
  }
}
