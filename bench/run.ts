/**
 * Runs the benchmark scenarios, each next to its raw baseline in the same run, prints a table and
 * writes bench/results/<timestamp>.json and .md. Figures, not assertions: nothing here fails on a
 * time. Usage: npm run bench [-- S2 S3 …]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import type { Row } from './lib/measure.ts';
import type { Behaviour } from './lib/receiver.ts';
import { heraldLive, ledgerText, rawLive, versus, type LiveOptions, type LiveRun } from './scenarios/live.ts';
import { listQueries, publishEvents } from './scenarios/api.ts';
import { heraldInbound, rawInbound, type InboundOptions, type InboundRun } from './scenarios/inbound.ts';
import { recordingNanosPerDelivery } from './scenarios/observability.ts';
import { startOtlpSink } from './lib/otlp-sink.ts';
import {
  heraldDrain,
  heraldPipeline,
  rawDrain,
  rawPipeline,
  type DrainOptions,
  type DrainRun,
  type PipelineOptions,
  type PipelineRun,
} from './scenarios/pipeline.ts';

/** Ten seconds of warm-up: a fresh Herald process is still compiling its hot path after three. */
const timing = { warmupMs: 10_000, steadyMs: 12_000 };
const tenHealthy: Behaviour[] = Array.from({ length: 10 }, () => 'ok');
/** Herald's defaults, except a higher in-flight cap per endpoint: these runs have one or ten endpoints. */
const env = { HERALD_MAX_IN_FLIGHT_PER_ENDPOINT: '64', HERALD_REQUEST_TIMEOUT_MS: '5000' };

function row(scenario: string, system: string, run: PipelineRun, baseline?: number): Row {
  const { ledger } = run;
  return {
    scenario,
    system,
    throughput: run.throughput,
    unit: 'deliveries/s',
    ...run.latency,
    cpu: Object.entries(run.cpu)
      .map(([name, pct]) => `${name} ${pct}%`)
      .join(', '),
    ledger: `${ledgerOf(ledger)}${run.queues ? `; most ${queuesOf(run.queues)}` : ''}`,
    ratio: baseline ? `${Math.round((run.throughput / baseline) * 100)} %` : '',
  };
}

const ledgerOf = (ledger: PipelineRun['ledger']) =>
  `${ledger.published} published, ${ledger.delivered}/${ledger.expected} delivered, ${ledger.pending} pending, ${ledger.duplicates} dup${ledger.balanced ? '' : ' — VOID'}`;

const queuesOf = (q: NonNullable<PipelineRun['queues']>) =>
  `${q.eventsWaiting} events waiting, ${q.deliveriesQueued} deliveries queued, ${q.notAttempted} not attempted, ${q.parked} parked, ${q.redelivered} redelivered`;

function drainRow(scenario: string, system: string, run: DrainRun, baseline?: number): Row {
  return {
    scenario,
    system,
    throughput: run.capacity,
    unit: 'deliveries/s',
    p50: NaN,
    p95: NaN,
    p99: NaN,
    cpu: Object.entries(run.cpu)
      .map(([name, pct]) => `${name} ${pct}%`)
      .join(', '),
    ledger: `${ledgerOf(run.ledger)}; drained in ${run.seconds} s`,
    ratio: baseline ? `${Math.round((run.capacity / baseline) * 100)} %` : '',
  };
}

function liveRow(system: string, run: LiveRun, baseline?: LiveRun): Row {
  return {
    scenario: 'S5 live, 2,000 subscribers × 5 attempts/s',
    system,
    throughput: run.throughput,
    unit: 'frames/s',
    ...run.latency,
    cpu: Object.entries(run.cpu)
      .map(([name, pct]) => `${name} ${pct}%`)
      .join(', '),
    ledger: ledgerText(run),
    ratio: baseline ? versus(run, baseline) : '',
  };
}

function inboundRow(scenario: string, system: string, run: InboundRun, baseline?: number): Row {
  const { ledger } = run;
  return {
    scenario,
    system,
    throughput: run.throughput,
    unit: 'requests/s',
    ...run.latency,
    cpu: Object.entries(run.cpu)
      .map(([name, pct]) => `${name} ${pct}%`)
      .join(', '),
    ledger: `${ledger.answered} answered 200, ${ledger.failed} failed, ${ledger.stored} stored, ${ledger.published} on the stream${ledger.balanced ? '' : ' — VOID'}`,
    ratio: baseline ? `${Math.round((run.throughput / baseline) * 100)} %` : '',
  };
}

const scenarios: Record<string, () => Promise<Row[]>> = {
  /** S1: publishEvent mutations against a node:http handler doing the same JetStream publish. */
  S1: () => publishEvents({ rate: 3_000, ...timing }),
  /** S2: end-to-end deliveries of 1 KB events to one local receiver. */
  async S2() {
    const options: PipelineOptions = { rate: 3_000, endpoints: ['ok'], ...timing, env };
    const raw = await rawPipeline(options);
    const herald = await heraldPipeline(options);
    return [
      row('S2 end to end, 1 endpoint', 'raw', raw),
      row('S2 end to end, 1 endpoint', 'Herald', herald, raw.throughput),
    ];
  },
  /** S3: one event to ten endpoints on separate ports, 5,000 deliveries/s offered (above the 4,000/s target). */
  async S3() {
    const options: PipelineOptions = { rate: 500, endpoints: tenHealthy, ...timing, env };
    const raw = await rawPipeline(options);
    const herald = await heraldPipeline(options);
    return [row('S3 fan-out 1 → 10', 'raw', raw), row('S3 fan-out 1 → 10', 'Herald', herald, raw.throughput)];
  },
  /**
   * S4: one endpoint in ten hangs; healthy throughput against the all-healthy run. Below capacity
   * (1,500 deliveries/s offered) it shows isolation alone; at 5,000/s, isolation and what the
   * hanging endpoint's parked work costs a saturated worker.
   */
  async S4() {
    const rows: Row[] = [];
    for (const rate of [150, 500]) {
      const base: PipelineOptions = { rate, endpoints: tenHealthy, ...timing, env };
      const healthy = await heraldPipeline(base);
      const degraded = await heraldPipeline({ ...base, endpoints: [...tenHealthy.slice(1), 'hang'] });
      // Per healthy endpoint, so nine against ten compare fairly.
      const perEndpoint = (run: PipelineRun, n: number) => ({
        ...run,
        throughput: Math.round(run.throughput / n),
      });
      const scenario = `S4 isolation at ${(rate * 10).toLocaleString('en')}/s, per healthy endpoint`;
      rows.push(
        row(scenario, 'Herald, all healthy', perEndpoint(healthy, 10)),
        row(scenario, 'Herald, 1 in 10 hangs', perEndpoint(degraded, 9), healthy.throughput / 10),
      );
    }
    return rows;
  },
  /** S5: graphql-ws subscribers, one socket each, of one webhook's attempts; 10,000 frames/s. */
  async S5() {
    const options: LiveOptions = { subscribers: 2_000, rate: 5, ...timing };
    const raw = await rawLive(options);
    const herald = await heraldLive(options);
    return [liveRow('raw ws broadcast', raw), liveRow('Herald', herald, raw)];
  },
  /** S6: 50-row list queries against the same SQL and JSON.stringify over node:http. */
  S6: () => listQueries({ rate: 1_000, ...timing }),
  /**
   * S7: capacity and overload, one endpoint. Capacity is the drain rate of 60,000 events already
   * on the stream when the pipeline starts, Herald's and the raw pipeline's; then Herald is
   * offered 80 % of its capacity (latency), and twice and three times it (what overload leaves).
   */
  async S7() {
    const scenario = 'S7 capacity: a backlog of 60,000 events';
    const backlog = { events: 60_000, endpoints: ['ok'] as Behaviour[], env };
    const raw = await rawDrain(backlog);
    const herald = await heraldDrain(backlog);
    const rows = [drainRow(scenario, 'raw', raw), drainRow(scenario, 'Herald', herald, raw.capacity)];
    for (const load of [0.8, 2, 3]) {
      const rate = Math.round(load * herald.capacity);
      const run = await heraldPipeline({ rate, endpoints: ['ok'], ...timing, env });
      rows.push(row(`S7 offered ${load}× Herald's capacity (${rate}/s)`, 'Herald', run, herald.capacity));
    }
    return rows;
  },
  /**
   * S8: signed inbound webhooks (~1 KiB JSON, HMAC-SHA256) from 64 senders back to back, received
   * at an inbound source and routed into events, against a node:http handler doing the same
   * verify, one-statement store and publish; interleaved, twice each.
   */
  async S8() {
    const options: InboundOptions = { senders: 64, warmupMs: 5_000, steadyMs: 10_000 };
    const rows: Row[] = [];
    for (let round = 1; round <= 2; round++) {
      const raw = await rawInbound(options);
      const herald = await heraldInbound(options);
      rows.push(
        inboundRow(`S8 inbound requests, run ${round}`, 'raw', raw),
        inboundRow(`S8 inbound requests, run ${round}`, 'Herald', herald, raw.throughput),
      );
    }
    return rows;
  },
  /**
   * S9: what metrics and tracing cost on S2's path (1 KB events, one endpoint), at saturation: the
   * drain capacity of a 30,000-event backlog with the metrics not scraped (Herald's default), with
   * every process scraped once a second (Prometheus scrapes every 15 s by default), and with traces
   * exported to a local OTLP/HTTP sink as well; interleaved, twice each. The instrument calls
   * themselves are always on: their cost is timed apart and set against the worker's CPU.
   */
  async S9() {
    const sink = await startOtlpSink();
    const scraped = { HERALD_METRICS_PORT: '0' };
    const variants: [string, Partial<DrainOptions>][] = [
      ['Herald, metrics not scraped', {}],
      ['Herald, metrics scraped every second', { env: scraped, scrapeEveryMs: 1_000 }],
      [
        'Herald, scraped and traced (OTLP/HTTP)',
        {
          env: { ...scraped, OTEL_EXPORTER_OTLP_ENDPOINT: sink.url, OTEL_SERVICE_NAME: 'herald-bench' },
          scrapeEveryMs: 1_000,
        },
      ],
    ];
    const rows: Row[] = [];
    try {
      for (let round = 1; round <= 2; round++) {
        const scenario = `S9 observability cost, capacity of a 30,000-event backlog, run ${round}`;
        let baseline: number | undefined;
        for (const [system, variant] of variants) {
          const run = await heraldDrain({
            events: 30_000,
            endpoints: ['ok'],
            ...variant,
            env: { ...env, ...variant.env },
          });
          rows.push(drainRow(scenario, system, run, baseline));
          baseline ??= run.capacity;
        }
      }
      const { exports, bytes } = sink.counts();
      console.error(`  the OTLP sink took ${exports} exports, ${Math.round(bytes / 1e6)} MB`);
    } finally {
      await sink.close();
    }
    const nanos = recordingNanosPerDelivery();
    rows.push({
      scenario: 'S9 the instrument calls of one delivery, timed apart',
      system: 'Herald metrics',
      throughput: Math.round(nanos),
      unit: 'ns/delivery',
      p50: NaN,
      p95: NaN,
      p99: NaN,
      cpu: '',
      ledger: '6 calls: dispatched, dispatch lag, in flight ±1, attempts, attempt duration',
      ratio: '',
    });
    return rows;
  },
};

const wanted = process.argv.slice(2).length > 0 ? process.argv.slice(2) : Object.keys(scenarios);
const rows: Row[] = [];
for (const name of wanted) {
  const scenario = scenarios[name];
  if (!scenario) throw new Error(`no scenario ${name}; there are ${Object.keys(scenarios).join(', ')}`);
  console.error(`running ${name}…`);
  const result = await scenario();
  for (const r of result)
    console.error(`  ${r.system}: ${r.throughput} ${r.unit}, p99 ${r.p99} ms ${r.ratio}`);
  rows.push(...result);
}

/** A drain has no latency to show. */
const ms = (value: number) => (Number.isNaN(value) ? '' : String(value));
const header =
  '| scenario | system | throughput | p50 ms | p95 ms | p99 ms | CPU (% of a core) | ledger | vs baseline |';
const table = [
  header,
  '|---|---|---|---|---|---|---|---|---|',
  ...rows.map(
    (r) =>
      `| ${r.scenario} | ${r.system} | ${r.throughput} ${r.unit} | ${ms(r.p50)} | ${ms(r.p95)} | ${ms(r.p99)} | ${r.cpu} | ${r.ledger} | ${r.ratio} |`,
  ),
].join('\n');
const stamp = new Date().toISOString().replace(/[:.]/g, '-');
const dir = new URL('./results/', import.meta.url);
mkdirSync(dir, { recursive: true });
writeFileSync(
  new URL(`${stamp}.json`, dir),
  `${JSON.stringify({ at: new Date().toISOString(), rows }, null, 2)}\n`,
);
writeFileSync(new URL(`${stamp}.md`, dir), `${table}\n`);
console.log(table);
process.exit(0);
