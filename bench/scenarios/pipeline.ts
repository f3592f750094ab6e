import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { DiscardPolicy, RetentionPolicy, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
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
  round,
  until,
  type Percentiles,
} from '../lib/measure.ts';
import { Receiver, payload, type Behaviour } from '../lib/receiver.ts';

export interface PipelineRun {
  /** Deliveries per second to healthy endpoints, counted by arrival within the steady window. */
  throughput: number;
  /** Herald only: the most each queue held, sampled every second of the run. */
  queues?: QueueSample;
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

/** Where a run's work waits: sampled from NATS and the database. */
export interface QueueSample {
  /** Events on the stream not yet dispatched (waiting, or held by the dispatcher). */
  eventsWaiting: number;
  /** Messages on the deliveries stream (queued, or with a worker and not yet settled). */
  deliveriesQueued: number;
  /** Delivery rows created and not yet attempted. */
  notAttempted: number;
  /** Delivery rows parked for a later attempt. */
  parked: number;
  /** Messages delivered again by JetStream (ack wait expired, or naked) and not yet acked, both consumers. */
  redelivered: number;
}

/**
 * Samples the queues of a Herald run every second (the delivery rows every third, a count that
 * costs PostgreSQL a scan); `stop` returns the most each held.
 */
function sampleQueues(space: { prefix: string; databaseUrl: string }) {
  const most: QueueSample = {
    eventsWaiting: 0,
    deliveriesQueued: 0,
    notAttempted: 0,
    parked: 0,
    redelivered: 0,
  };
  const upper = space.prefix.toUpperCase();
  let stopped = false;
  const sampling = (async () => {
    const nc = await connect({ servers: services.nats });
    const jsm = await jetstreamManager(nc);
    const db = new pg.Client({ connectionString: space.databaseUrl });
    await db.connect();
    const none = { num_pending: 0, num_ack_pending: 0, num_redelivered: 0 };
    const consumer = (stream: string, name: string) => jsm.consumers.info(stream, name).catch(() => none);
    const rows = () =>
      db
        .query<{ waiting: number; parked: number }>(
          "select count(*) filter (where status = 'PENDING' and attempts = 0)::int as waiting, count(*) filter (where status = 'RETRYING')::int as parked from deliveries",
        )
        .then((result) => result.rows[0]!);
    const nothing = { waiting: 0, parked: 0 };
    try {
      for (let second = 0; !stopped; second++) {
        // A sample that fails (the run is ending) counts as empty.
        const [events, deliveries, queued, counted] = await Promise.all([
          consumer(`${upper}_EVENTS`, 'dispatcher'),
          consumer(`${upper}_DELIVERIES`, 'deliverer'),
          jsm.streams.info(`${upper}_DELIVERIES`).then(
            (info) => info.state.messages,
            () => 0,
          ),
          second % 3 === 0 ? rows().catch(() => nothing) : nothing,
        ]);
        const sample: QueueSample = {
          eventsWaiting: events.num_pending + events.num_ack_pending,
          deliveriesQueued: queued,
          notAttempted: counted.waiting,
          parked: counted.parked,
          redelivered: events.num_redelivered + deliveries.num_redelivered,
        };
        for (const key of Object.keys(most) as (keyof QueueSample)[])
          most[key] = Math.max(most[key], sample[key]);
        await until(() => stopped, 1_000);
      }
    } finally {
      await db.end();
      await nc.close();
    }
  })();
  return {
    /** Ends the sampling (again: harmless) and returns the most each queue held. */
    async stop(): Promise<QueueSample> {
      stopped = true;
      await sampling;
      return most;
    },
  };
}

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
    const queues = sampleQueues(space);
    const publishing = publishLoad(
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
    // Stopped also when the load fails: its connections would outlive the run's database.
    const load = await publishing.finally(() => queues.stop());
    const most = await queues.stop();
    const healthy = receivers.filter((_, i) => options.endpoints[i] === 'ok');
    const healthyIds = tenant.webhookIds.filter((_, i) => options.endpoints[i] === 'ok').map(rawId);
    const run = await settle(load, healthy, {
      // A drained worker has recorded every attempt it made: nothing is counted twice.
      quiesce: () => worker.stop(),
      pending: () => heraldPending(space.databaseUrl, load.published, healthyIds),
    });
    return { ...run, queues: most };
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

/**
 * The raw pipeline (bench/raw/pipeline.ts) on `receivers`: its work-queue stream in a bench space
 * of its own, the process started on it, and its ledger.
 */
async function rawSetUp(name: string, receivers: Receiver[]) {
  const space = await benchSpace(name);
  const stream = `${space.prefix.toUpperCase()}_RAW`;
  const nc = await connect({ servers: services.nats });
  const jsm = await jetstreamManager(nc);
  await jsm.streams.add({
    name: stream,
    subjects: [`${space.prefix}.raw.>`],
    retention: RetentionPolicy.Workqueue,
    discard: DiscardPolicy.Old,
  });
  let child: ChildProcess | undefined;
  return {
    subject: `${space.prefix}.raw.events`,
    /** Starts the process; resolves with its pid once it consumes. */
    async start(): Promise<number> {
      const started = fork(
        fileURLToPath(new URL('../raw/pipeline.ts', import.meta.url)),
        [space.databaseUrl, services.nats, stream, receivers.map((r) => r.url).join(',')],
        { stdio: 'inherit' },
      );
      child = started;
      await new Promise<void>((resolve, reject) => {
        started.once('message', () => resolve());
        started.once('exit', (code) => reject(new Error(`the raw pipeline exited with ${code}`)));
      });
      return started.pid!;
    },
    // Acks follow the batched inserts within milliseconds once the POSTs are done.
    quiesce: () =>
      until(async () => (await jsm.consumers.info(stream, 'raw')).num_ack_pending === 0, 10_000).then(
        () => undefined,
      ),
    /** Messages not yet acked: their rows are not stored yet. */
    async pending(): Promise<number> {
      const info = await jsm.consumers.info(stream, 'raw');
      return (info.num_pending + info.num_ack_pending) * receivers.length;
    },
    async close(): Promise<void> {
      child?.kill('SIGTERM');
      await jsm.streams.delete(stream).catch(() => false);
      await nc.close();
      await space.drop();
    },
  };
}

/** The raw pipeline on the same receivers, load and machine. */
export async function rawPipeline(options: PipelineOptions): Promise<PipelineRun> {
  const receivers = await startReceivers(options.endpoints);
  const raw = await rawSetUp('raw', receivers);
  try {
    const pid = await raw.start();
    const cpu = new CpuMeter({ worker: pid, bench: process.pid, ...serverProcesses });
    const load = await publishLoad(
      options,
      raw.subject,
      (id, t) => ({ id, type: 'bench.order.created', current: payload(t) }),
      receivers,
      cpu,
    );
    return await settle(load, receivers, { quiesce: raw.quiesce, pending: () => raw.pending() });
  } finally {
    await raw.close();
    await Promise.all(receivers.map((r) => r.close()));
  }
}

export interface DrainOptions {
  /** Events on the stream before the pipeline starts. */
  events: number;
  endpoints: Behaviour[];
  env?: Record<string, string>;
  /** Scrape every process's metrics this often while the backlog drains (HERALD_METRICS_PORT must be set). */
  scrapeEveryMs?: number;
}

export interface DrainRun {
  /** Deliveries per second while the backlog drains (see drainRate). */
  capacity: number;
  /** From the pipeline's start to the last delivery. */
  seconds: number;
  cpu: Record<string, number>;
  ledger: PipelineRun['ledger'];
}

/** Publishes `count` messages onto `subject` as fast as the stream takes them, 1,000 in flight. */
async function prePublish(subject: string, count: number, message: (id: string) => unknown): Promise<void> {
  const nc = await connect({ servers: services.nats });
  const js = jetstream(nc);
  const inFlight = new Set<Promise<unknown>>();
  for (let i = 0; i < count; i++) {
    const id = randomUUID();
    const sent: Promise<unknown> = js
      .publish(subject, encoder.encode(JSON.stringify(message(id))), { msgID: id })
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
    if (inFlight.size >= 1_000) await Promise.race(inFlight);
  }
  await Promise.all(inFlight);
  await nc.close();
}

/**
 * Deliveries per second between the 10th and the 90th percentile of their first arrivals: the
 * pace once the pipeline is going, without its start (processes warming up) and its tail.
 */
function drainRate(receivers: Receiver[]): number {
  const arrivals = Float64Array.from(receivers.flatMap((r) => [...r.firstArrival.values()])).sort();
  const from = arrivals[Math.floor(arrivals.length * 0.1)]!;
  const to = arrivals[Math.floor(arrivals.length * 0.9)]!;
  return round((arrivals.length * 0.8) / ((to - from) / 1000), 0);
}

/** Waits for every delivery of a drain (3 minutes at most); the run's CPU and how long it took. */
async function drain(receivers: Receiver[], expected: number, cpu: CpuMeter) {
  const started = performance.now();
  cpu.begin();
  const drained = await until(() => receivers.reduce((n, r) => n + r.delivered, 0) >= expected, 180_000);
  if (!drained) throw new Error('the backlog did not drain within 3 minutes: no capacity to read');
  return { cpu: cpu.end(), seconds: round((performance.now() - started) / 1000) };
}

/** A drain's figures and ledger: every event delivered to each receiver, or still pending. */
function drained(
  receivers: Receiver[],
  run: { cpu: Record<string, number>; seconds: number },
  counts: { published: number; expected: number; pending: number },
): DrainRun {
  const delivered = receivers.reduce((n, r) => n + r.delivered, 0);
  return {
    capacity: drainRate(receivers),
    ...run,
    ledger: {
      ...counts,
      delivered,
      duplicates: receivers.reduce((n, r) => n + r.duplicates, 0),
      balanced: delivered + counts.pending === counts.expected,
    },
  };
}

/** Herald's capacity: a backlog of events already on its stream when the worker starts. */
export async function heraldDrain(options: DrainOptions): Promise<DrainRun> {
  const receivers = await startReceivers(options.endpoints);
  const space = await benchSpace('drain');
  const env = heraldEnv(space, options.env);
  const api = await startHerald('api', env);
  const type = 'bench.order.created';
  try {
    const tenant = await setUpTenant(api.url!, env.HERALD_ADMIN_TOKEN, {
      type,
      webhookUrls: receivers.map((r) => r.url),
    });
    const tenantId = rawId(tenant.tenantId);
    await prePublish(`${space.prefix}.events.${tenantId}.${type}`, options.events, (id) => ({
      v: 1,
      id,
      tenantId,
      type,
      meta: { module: 'bench', model: 'order', action: 'created' },
      current: payload(Date.now()),
      previous: null,
      occurredAt: new Date().toISOString(),
      idempotencyKey: id,
    }));
    const worker = await startHerald('worker', env);
    const scraping = options.scrapeEveryMs ? scrapeEvery(options.scrapeEveryMs, [api, worker]) : null;
    try {
      const expected = options.events * receivers.length;
      const run = await drain(
        receivers,
        expected,
        new CpuMeter({ worker: worker.pid, bench: process.pid, ...serverProcesses }),
      );
      scraping?.stop();
      await worker.stop();
      const pending = await heraldPending(space.databaseUrl, options.events, tenant.webhookIds.map(rawId));
      return drained(receivers, run, { published: options.events, expected, pending });
    } finally {
      await worker.stop();
    }
  } finally {
    await api.stop();
    await space.drop();
    await Promise.all(receivers.map((r) => r.close()));
  }
}

/** Scrapes the processes' metrics as Prometheus would, until stopped; a failed scrape fails the run. */
function scrapeEvery(ms: number, processes: HeraldProcess[]) {
  const urls = processes.map((p) => {
    if (!p.metricsUrl) throw new Error('scraping needs HERALD_METRICS_PORT: the process serves no metrics');
    return p.metricsUrl;
  });
  let failure: Error | undefined;
  const timer = setInterval(() => {
    for (const url of urls) {
      fetch(url)
        .then(async (response) => {
          if (response.status !== 200) throw new Error(`${url} answered ${response.status}`);
          await response.text();
        })
        .catch((error: unknown) => (failure ??= error instanceof Error ? error : new Error(String(error))));
    }
  }, ms);
  return {
    stop() {
      clearInterval(timer);
      if (failure) throw failure;
    },
  };
}

/** Deliveries to these webhooks not yet succeeded, and one per webhook for each event not yet dispatched. */
async function heraldPending(databaseUrl: string, published: number, webhookIds: string[]): Promise<number> {
  const db = new pg.Client({ connectionString: databaseUrl });
  await db.connect();
  try {
    const deliveries = await db.query<{ n: number }>(
      "select count(*)::int as n from deliveries where webhook_id = any($1) and status <> 'SUCCEEDED'",
      [webhookIds],
    );
    const dispatched = await db.query<{ n: number }>(
      'select count(*)::int as n from events where dispatched_at is not null',
    );
    return deliveries.rows[0]!.n + (published - dispatched.rows[0]!.n) * webhookIds.length;
  } finally {
    await db.end();
  }
}

/** The raw pipeline's capacity, the same way: a backlog on its stream when it starts. */
export async function rawDrain(options: DrainOptions): Promise<DrainRun> {
  const receivers = await startReceivers(options.endpoints);
  const raw = await rawSetUp('rawdrain', receivers);
  try {
    await prePublish(raw.subject, options.events, (id) => ({
      id,
      type: 'bench.order.created',
      current: payload(Date.now()),
    }));
    const pid = await raw.start();
    const expected = options.events * receivers.length;
    const run = await drain(
      receivers,
      expected,
      new CpuMeter({ worker: pid, bench: process.pid, ...serverProcesses }),
    );
    await raw.quiesce();
    return drained(receivers, run, { published: options.events, expected, pending: await raw.pending() });
  } finally {
    await raw.close();
    await Promise.all(receivers.map((r) => r.close()));
  }
}
