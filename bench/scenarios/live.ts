/**
 * Live fan-out (S5): every subscriber watches the delivery attempts of one webhook, on a WebSocket
 * of its own, as consoles do. Attempts are published onto the bus as a delivery worker publishes
 * them, so frames/s = attempts/s × subscribers. Subscribers run in a process of their own
 * (bench/lib/subscribers.ts) and time each frame from its attempt's scheduled publish.
 */
import { fork } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { RetentionPolicy, StorageType, jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { attemptMessageV1, encode, streams, subjects } from '../../src/bus/contracts.ts';
import { benchSpace, heraldEnv, rawId, services, setUpTenant, startHerald } from '../lib/herald.ts';
import { CpuMeter, openLoad, percentiles, round, until, type Percentiles } from '../lib/measure.ts';
import { Subscribers, type SubscriberOrders } from '../lib/subscribers.ts';

export interface LiveOptions {
  subscribers: number;
  /** Attempts published per second; each reaches every subscriber: frames/s = rate × subscribers. */
  rate: number;
  warmupMs: number;
  steadyMs: number;
  /** Environment for the Herald process. */
  env?: Record<string, string>;
}

export interface LiveRun {
  /** Frames received per second within the steady window, over all subscribers. */
  throughput: number;
  /** From the attempt's scheduled publish to its frame's arrival at a subscriber. */
  latency: Percentiles;
  cpu: Record<string, number>;
  /** CPU of the server process alone, in percent of one core. */
  serverCpu: number;
  ledger: {
    published: number;
    subscribers: number;
    /** Publishes the stream did not acknowledge: what they should have caused is unknown. */
    failed: number;
    /** published × subscribers. */
    expected: number;
    received: number;
    missing: number;
    duplicates: number;
    /** Subscription errors, closed sockets, frames nobody published. */
    errors: number;
    firstErrors: string[];
    balanced: boolean;
  };
}

export function ledgerText({ ledger }: LiveRun): string {
  const errors = ledger.errors > 0 ? `, ${ledger.errors} errors (${ledger.firstErrors.join('; ')})` : '';
  const failed = ledger.failed > 0 ? `, ${ledger.failed} publishes failed` : '';
  return `${ledger.published} published × ${ledger.subscribers} subscribers: ${ledger.received}/${ledger.expected} frames, ${ledger.missing} missing, ${ledger.duplicates} dup${failed}${errors}${ledger.balanced ? '' : ' — VOID'}`;
}

/**
 * Against the baseline: throughput, and what the server spent on it (both keep up with the offered
 * load when they can, so the difference shows in CPU and latency).
 */
export function versus(run: LiveRun, baseline: LiveRun): string {
  const throughput = Math.round((run.throughput / baseline.throughput) * 100);
  return `${throughput} %, server CPU ×${round(run.serverCpu / Math.max(1, baseline.serverCpu))}`;
}

/** Where the load goes and who receives it. */
interface Target {
  prefix: string;
  tenantId: string;
  webhookId: string;
  orders: Omit<SubscriberOrders, 'count' | 'frames'>;
  /** The server process measured: its name in the CPU column, and its pid. */
  server: { name: string; pid: number };
}

/** Publishes attempts of the target's webhook, as a delivery worker does, carrying `response`. */
function attemptPublisher(nc: NatsConnection, target: Target) {
  const js = jetstream(nc);
  const subject = subjects(target.prefix).attempt(target.tenantId, target.webhookId);
  return async (response: unknown) => {
    const id = randomUUID();
    const message = encode(attemptMessageV1, {
      v: 1,
      id,
      tenantId: target.tenantId,
      deliveryId: randomUUID(),
      webhookId: target.webhookId,
      attempt: 1,
      status: 'SUCCEEDED',
      url: 'https://example.com/hooks/orders',
      statusCode: 204,
      responseTimeMs: 12,
      response: JSON.stringify(response),
      errorClass: null,
      error: null,
      createdAt: new Date().toISOString(),
    });
    await js.publish(subject, message, { msgID: id });
  };
}

/** graphql-ws acknowledges no subscribe: a subscriber is live once it received a probe. */
async function probeUntilLive(
  subscribers: Subscribers,
  count: number,
  publish: (r: unknown) => Promise<void>,
) {
  const everyoneLive = async () => (await subscribers.status()).probed >= count;
  for (let probe = 0; probe < 30 && !(await everyoneLive()); probe++) {
    await publish({ probe });
    await until(everyoneLive, 2_000);
  }
  const { probed } = await subscribers.status();
  if (probed < count) throw new Error(`only ${probed} of ${count} subscribers went live`);
}

/**
 * Connects the subscribers, probes until every one of them is live, then publishes attempts at a
 * constant rate and takes the ledger once every frame has arrived (15 s at most).
 */
async function liveLoad(options: LiveOptions, target: Target): Promise<LiveRun> {
  const frames = Math.ceil((options.rate * (options.warmupMs + options.steadyMs)) / 1000) + 1;
  const nc = await connect({ servers: services.nats });
  let started: Subscribers | undefined;
  try {
    const subscribers = (started = await Subscribers.start({
      ...target.orders,
      count: options.subscribers,
      frames,
    }));
    const publish = attemptPublisher(nc, target);
    await probeUntilLive(subscribers, options.subscribers, publish);

    const meter = new CpuMeter({
      [target.server.name]: target.server.pid,
      subscribers: subscribers.pid,
      bench: process.pid,
    });
    let cpu: Record<string, number> = {};
    let loadStart = 0;
    const load = await openLoad({
      rate: options.rate,
      warmupMs: options.warmupMs,
      steadyMs: options.steadyMs,
      drainMs: 10_000,
      onSteady: { begin: () => meter.begin(), end: () => (cpu = meter.end()) },
      send: async (i, scheduledAt) => {
        const t = performance.timeOrigin + scheduledAt;
        if (i === 0) loadStart = t;
        await publish({ i, t });
      },
    });
    const expected = load.completed * options.subscribers;
    await until(async () => (await subscribers.status()).unique >= expected, 15_000);
    const report = await subscribers.report();

    const steadyFrom = loadStart + options.warmupMs;
    const steadyTo = steadyFrom + options.steadyMs;
    const latencies: number[] = [];
    let inWindow = 0;
    for (let k = 0; k < report.timings.length; k += 2) {
      const scheduled = report.timings[k]!;
      const arrived = report.timings[k + 1]!;
      if (arrived >= steadyFrom && arrived < steadyTo) inWindow++;
      if (scheduled >= steadyFrom && scheduled < steadyTo) latencies.push(arrived - scheduled);
    }
    const missing = expected - report.unique;
    const errors = report.errors + report.stray;
    return {
      throughput: round(inWindow / (options.steadyMs / 1000), 0),
      latency: percentiles(latencies),
      cpu,
      serverCpu: cpu[target.server.name]!,
      ledger: {
        published: load.completed,
        subscribers: options.subscribers,
        failed: load.failed,
        expected,
        received: report.unique,
        missing,
        duplicates: report.duplicates,
        errors,
        firstErrors: report.firstErrors,
        balanced: missing === 0 && load.failed === 0 && errors === 0,
      },
    };
  } finally {
    await started?.stop();
    await nc.close();
  }
}

/** Herald's API process; every subscriber watches the attempts of one webhook of one tenant. */
export async function heraldLive(options: LiveOptions): Promise<LiveRun> {
  const space = await benchSpace('live');
  const env = heraldEnv(space, options.env);
  const api = await startHerald('api', env);
  try {
    const tenant = await setUpTenant(api.url!, env.HERALD_ADMIN_TOKEN, {
      type: 'bench.order.created',
      webhookUrls: ['http://127.0.0.1:9/hook'],
    });
    const webhookId = tenant.webhookIds[0]!;
    return await liveLoad(options, {
      prefix: space.prefix,
      tenantId: rawId(tenant.tenantId),
      webhookId: rawId(webhookId),
      orders: {
        protocol: 'graphql-ws',
        url: `${api.url!.replace(/^http/, 'ws')}/graphql`,
        token: tenant.token,
        webhookId,
      },
      server: { name: 'api', pid: api.pid },
    });
  } finally {
    await api.stop();
    await space.drop();
  }
}

/** The raw fan-out (bench/raw/live.ts) on a stream laid out as Herald's attempts stream. */
export async function rawLive(options: LiveOptions): Promise<LiveRun> {
  const space = await benchSpace('rawlive');
  const nc = await connect({ servers: services.nats });
  const spec = streams(space.prefix).attempts;
  await (
    await jetstreamManager(nc)
  ).streams.add({
    name: spec.name,
    subjects: spec.subjects,
    retention: RetentionPolicy.Limits,
    storage: StorageType.File,
    max_age: nanos(spec.maxAgeMs),
  });
  const tenantId = randomUUID();
  const webhookId = randomUUID();
  const child = fork(
    fileURLToPath(new URL('../raw/live.ts', import.meta.url)),
    [services.nats, spec.name, subjects(space.prefix).attempt(tenantId, webhookId)],
    { stdio: 'inherit' },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (message: { port: number }) => resolve(message.port));
      child.once('exit', (code) => reject(new Error(`the raw live server exited with ${code}`)));
    });
    return await liveLoad(options, {
      prefix: space.prefix,
      tenantId,
      webhookId,
      orders: { protocol: 'raw', url: `ws://127.0.0.1:${port}` },
      server: { name: 'server', pid: child.pid! },
    });
  } finally {
    child.kill('SIGTERM');
    await nc.close();
    await space.drop();
  }
}
