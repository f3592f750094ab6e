import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DiscardPolicy, RetentionPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { benchSpace, heraldEnv, rawId, services, setUpTenant, startHerald } from '../lib/herald.ts';
import {
  CpuMeter,
  openLoad,
  percentiles,
  serverProcesses,
  round,
  until,
  type Percentiles,
} from '../lib/measure.ts';
import { Receiver, payload, type Behaviour } from '../lib/receiver.ts';

export interface PipelineRun {
  /** Deliveries per second to healthy endpoints, counted by arrival within the steady window. */
  throughput: number;
  /** From the event's scheduled publish to its first arrival at the endpoint. */
  latency: Percentiles;
  cpu: Record<string, number>;
  ledger: {
    published: number;
    expected: number;
    delivered: number;
    pending: number;
    duplicates: number;
    balanced: boolean;
  };
}

export interface PipelineOptions {
  /** Events per second, published straight onto the bus (as a host may). */
  rate: number;
  endpoints: Behaviour[];
  warmupMs: number;
  steadyMs: number;
  /** Environment for the Herald processes. */
  env?: Record<string, string>;
}

const encoder = new TextEncoder();

async function startReceivers(behaviours: Behaviour[]) {
  return Promise.all(behaviours.map((b) => new Receiver(b).start()));
}

/** Publishes events onto `subject(i)` at a constant rate; returns how many the stream acknowledged. */
async function publishLoad(
  options: PipelineOptions,
  subject: string,
  message: (id: string, scheduledAt: number) => unknown,
  receivers: Receiver[],
  cpu: CpuMeter,
) {
  const nc = await connect({ servers: services.nats });
  const js = jetstream(nc);
  const windowStart = Date.now() + options.warmupMs;
  for (const r of receivers) {
    r.measureFrom = windowStart;
    r.measureTo = windowStart + options.steadyMs;
  }
  const arrivedAtStart = new Map<Receiver, number>();
  let published = 0;
  await openLoad({
    rate: options.rate,
    warmupMs: options.warmupMs,
    steadyMs: options.steadyMs,
    drainMs: 10_000,
    onSteady: {
      begin: () => {
        cpu.begin();
        for (const r of receivers) arrivedAtStart.set(r, r.delivered);
      },
      end: () => {
        for (const r of receivers) arrivedAtStart.set(r, r.delivered - arrivedAtStart.get(r)!);
      },
    },
    send: async (_i, scheduledAt) => {
      const id = randomUUID();
      const wall = performance.timeOrigin + scheduledAt;
      await js.publish(subject, encoder.encode(JSON.stringify(message(id, wall))), { msgID: id });
      published++;
    },
  });
  const cpuUse = cpu.end();
  await nc.close();
  const inWindow = [...arrivedAtStart.values()].reduce((a, b) => a + b, 0);
  return { published, cpuUse, throughput: round(inWindow / (options.steadyMs / 1000), 0) };
}

/** Herald: events onto its EVENTS stream, dispatcher and workers in a worker process. */
export async function heraldPipeline(options: PipelineOptions): Promise<PipelineRun> {
  const receivers = await startReceivers(options.endpoints);
  const space = await benchSpace('pipe');
  const env = heraldEnv(space, options.env);
  const api = await startHerald('api', env);
  const worker = await startHerald('worker', env);
  try {
    const type = 'bench.order.created';
    const tenant = await setUpTenant(api.url!, env.HERALD_ADMIN_TOKEN, {
      type,
      webhookUrls: receivers.map((r) => r.url),
    });
    const tenantId = rawId(tenant.tenantId);
    const cpu = new CpuMeter({ worker: worker.pid, bench: process.pid, ...serverProcesses });
    const load = await publishLoad(
      options,
      `${space.prefix}.events.${tenantId}.${type}`,
      (id, t) => ({
        v: 1,
        id,
        tenantId,
        type,
        meta: { module: 'bench', model: 'order', action: 'created' },
        current: payload(t),
        previous: null,
        occurredAt: new Date(t).toISOString(),
        idempotencyKey: id,
      }),
      receivers,
      cpu,
    );
    const healthy = receivers.filter((_, i) => options.endpoints[i] === 'ok');
    const healthyIds = tenant.webhookIds.filter((_, i) => options.endpoints[i] === 'ok').map(rawId);
    const db = new pg.Client({ connectionString: space.databaseUrl });
    await db.connect();
    try {
      return await settle(load, healthy, {
        // A drained worker has recorded every attempt it made: nothing is counted twice.
        quiesce: () => worker.stop(),
        // Deliveries not yet succeeded, and events not yet dispatched, one per healthy endpoint.
        pending: async () => {
          const deliveries = await db.query<{ n: string }>(
            "select count(*) as n from deliveries where webhook_id = any($1) and status <> 'SUCCEEDED'",
            [healthyIds],
          );
          const dispatched = await db.query<{ n: string }>(
            'select count(*) as n from events where dispatched_at is not null',
          );
          return (
            Number(deliveries.rows[0]!.n) + (load.published - Number(dispatched.rows[0]!.n)) * healthy.length
          );
        },
      });
    } finally {
      await db.end();
    }
  } finally {
    await worker.stop();
    await api.stop();
    await space.drop();
    await Promise.all(receivers.map((r) => r.close()));
  }
}

/**
 * Waits for the deliveries to arrive (30 s at most), stops the pipeline, then takes the ledger:
 * every published event is delivered to each endpoint or still pending, else the run is void.
 */
async function settle(
  load: { published: number; cpuUse: Record<string, number>; throughput: number },
  receivers: Receiver[],
  steps: { quiesce: () => Promise<void>; pending: () => Promise<number> },
): Promise<PipelineRun> {
  const expected = load.published * receivers.length;
  const delivered = () => receivers.reduce((n, r) => n + r.delivered, 0);
  await until(() => delivered() >= expected, 30_000);
  await steps.quiesce();
  const pending = await steps.pending();
  return {
    throughput: load.throughput,
    latency: percentiles(receivers.flatMap((r) => r.latencies)),
    cpu: load.cpuUse,
    ledger: {
      published: load.published,
      expected,
      delivered: delivered(),
      pending,
      duplicates: receivers.reduce((n, r) => n + r.duplicates, 0),
      balanced: delivered() + pending === expected,
    },
  };
}

/** The raw pipeline (bench/raw/pipeline.ts) on the same receivers, load and machine. */
export async function rawPipeline(options: PipelineOptions): Promise<PipelineRun> {
  const receivers = await startReceivers(options.endpoints);
  const space = await benchSpace('raw');
  const stream = `${space.prefix.toUpperCase()}_RAW`;
  const nc = await connect({ servers: services.nats });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: stream,
    subjects: [`${space.prefix}.raw.>`],
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.Old,
  });
  const child = fork(
    fileURLToPath(new URL('../raw/pipeline.ts', import.meta.url)),
    [space.databaseUrl, services.nats, stream, receivers.map((r) => r.url).join(',')],
    { stdio: 'inherit' },
  );
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the raw pipeline exited with ${code}`)));
  });
  try {
    const cpu = new CpuMeter({ worker: child.pid!, bench: process.pid, ...serverProcesses });
    const load = await publishLoad(
      options,
      `${space.prefix}.raw.events`,
      (id, t) => ({ id, type: 'bench.order.created', current: payload(t) }),
      receivers,
      cpu,
    );
    return await settle(load, receivers, {
      // Acks follow the batched inserts within milliseconds once the POSTs are done.
      quiesce: () =>
        until(async () => {
          const info = await jsm.consumers.info(stream, 'raw');
          return info.num_ack_pending === 0;
        }, 10_000).then(() => undefined),
      // Messages not yet acked: their rows are not stored yet.
      pending: async () => {
        const info = await jsm.consumers.info(stream, 'raw');
        return (info.num_pending + info.num_ack_pending) * receivers.length;
      },
    });
  } finally {
    child.kill('SIGTERM');
    await jsm.streams.delete(stream).catch(() => false);
    await nc.close();
    await space.drop();
    await Promise.all(receivers.map((r) => r.close()));
  }
}
