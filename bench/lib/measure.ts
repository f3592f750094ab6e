import { readFileSync, readdirSync } from 'node:fs';
import { setTimeout as delay } from 'node:timers/promises';

/** A row of the results table (bench/run.ts). */
export interface Row {
  scenario: string;
  system: string;
  throughput: number;
  unit: string;
  p50: number;
  p95: number;
  p99: number;
  cpu: string;
  ledger: string;
  ratio: string;
}

/** Latency percentiles in milliseconds. */
export interface Percentiles {
  p50: number;
  p95: number;
  p99: number;
}

export function percentiles(samples: number[]): Percentiles {
  if (samples.length === 0) return { p50: NaN, p95: NaN, p99: NaN };
  const sorted = Float64Array.from(samples).sort();
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
  return { p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)) };
}

export const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;

const TICKS_PER_SECOND = 100;

/** CPU seconds (user + system) a process has used so far, from /proc. */
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/** The pids of running processes whose command name is `comm` (all PostgreSQL backends, say). */
function pidsNamed(comm: string): number[] {
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry))
    .map(Number)
    .filter((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm;
      } catch {
        return false;
      }
    });
}

/** The machine's shared servers, each as the sum of its processes: their share of the work. */
export const serverProcesses: Record<string, () => number[]> = {
  postgres: () => pidsNamed('postgres'),
  nats: () => pidsNamed('nats-server'),
};

type Pids = number | (() => number[]);

/**
 * CPU use of named processes over a window, in percent of one core. A name may stand for a group
 * of processes found at the start and the end of the window (a server's connections); a process
 * that came and went within the window is missed.
 */
export class CpuMeter {
  private readonly pids: Record<string, Pids>;
  private start: Record<string, Map<number, number>> = {};
  private startedAt = 0;

  constructor(pids: Record<string, Pids>) {
    this.pids = pids;
  }

  begin(): void {
    this.startedAt = performance.now();
    this.start = Object.fromEntries(Object.entries(this.pids).map(([name, pids]) => [name, this.read(pids)]));
  }

  end(): Record<string, number> {
    const seconds = (performance.now() - this.startedAt) / 1000;
    return Object.fromEntries(
      Object.entries(this.pids).map(([name, pids]) => {
        const before = this.start[name]!;
        let used = 0;
        for (const [pid, cpu] of this.read(pids)) used += cpu - (before.get(pid) ?? 0);
        return [name, round((used / seconds) * 100, 0)];
      }),
    );
  }

  private read(pids: Pids): Map<number, number> {
    const list = typeof pids === 'number' ? [pids] : pids();
    const seconds = new Map<number, number>();
    for (const pid of list) {
      try {
        seconds.set(pid, cpuSeconds(pid));
      } catch {
        // It exited meanwhile.
      }
    }
    return seconds;
  }
}

export interface OpenLoadOptions {
  /** Arrivals per second, held constant whatever the responses do (open model). */
  rate: number;
  warmupMs: number;
  steadyMs: number;
  /** Longest wait for requests still in flight after the last arrival. */
  drainMs: number;
  /** Sends arrival `i`; resolves when it is answered. Latency runs from `scheduledAt`. */
  send: (i: number, scheduledAt: number) => Promise<void>;
  /** Called as the steady window opens and closes (e.g. to read CPU counters). */
  onSteady?: { begin: () => void; end: () => void };
}

export interface OpenLoadResult {
  sent: number;
  completed: number;
  failed: number;
  /** Completions per second within the steady window. */
  throughput: number;
  /** From scheduled arrival to answer, for arrivals scheduled in the steady window. */
  latency: Percentiles;
}

/**
 * Constant arrival rate: warm-up, steady window, drain. Arrivals are issued on schedule even when
 * earlier ones are still waiting, so a slow server shows up as latency, not as a lower offered load.
 */
export async function openLoad(options: OpenLoadOptions): Promise<OpenLoadResult> {
  const { rate, warmupMs, steadyMs, drainMs, send } = options;
  const interval = 1000 / rate;
  const start = performance.now();
  const steadyFrom = start + warmupMs;
  const steadyTo = steadyFrom + steadyMs;
  const latencies: number[] = [];
  let sent = 0;
  let completed = 0;
  let failed = 0;
  let completedInSteady = 0;
  let steadyBegun = false;
  const inFlight = new Set<Promise<void>>();

  for (let i = 0; ; i++) {
    const scheduledAt = start + i * interval;
    if (scheduledAt >= steadyTo) break;
    const now = performance.now();
    if (scheduledAt > now + 1) await delay(scheduledAt - now);
    if (!steadyBegun && performance.now() >= steadyFrom) {
      steadyBegun = true;
      options.onSteady?.begin();
    }
    sent++;
    const task = send(i, scheduledAt).then(
      () => {
        const done = performance.now();
        completed++;
        if (done >= steadyFrom && done < steadyTo) completedInSteady++;
        if (scheduledAt >= steadyFrom) latencies.push(done - scheduledAt);
      },
      () => {
        failed++;
      },
    );
    const tracked = task.finally(() => inFlight.delete(tracked));
    inFlight.add(tracked);
  }
  if (!steadyBegun) options.onSteady?.begin();
  const remaining = steadyTo - performance.now();
  if (remaining > 0) await delay(remaining);
  options.onSteady?.end();
  await Promise.race([Promise.allSettled([...inFlight]), delay(drainMs)]);
  return {
    sent,
    completed,
    failed,
    throughput: round(completedInSteady / (steadyMs / 1000), 0),
    latency: percentiles(latencies),
  };
}

/** Polls until `check` is true or `timeoutMs` passes; returns whether it became true. */
export async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await delay(50);
  }
  return check();
}
