import { randomUUID } from 'node:crypto';
import pg from 'pg';
import {
  benchSpace,
  graphqlClient,
  heraldEnv,
  rawId,
  setUpTenant,
  startHerald,
  type HeraldProcess,
  type Services,
} from '../lib/herald.ts';
import { openLoad, until } from '../lib/measure.ts';
import { Receiver, payload } from '../lib/receiver.ts';
import { withCleanup } from './cleanup.ts';

/** The load every fault runs under. */
export const load = {
  /** publishEvent mutations per second. */
  rate: 100,
  durationMs: 18_000,
  /** Webhooks of the tenant, each to a receiver of its own: every event is two deliveries. */
  webhooks: 2,
  /** The fault comes once this much of the load was accepted and deliveries arrive. */
  faultAfterMs: 5_000,
  /** A mutation unanswered this long counts as refused. */
  requestTimeoutMs: 10_000,
  /** The longest wait, once the load is over, for every accepted event's deliveries. */
  settleTimeoutMs: 300_000,
};

/** As in the benchmarks: a 5 s request timeout (so a 15 s ack wait) and room for a busy endpoint. */
const heraldSettings = { HERALD_MAX_IN_FLIGHT_PER_ENDPOINT: '64', HERALD_REQUEST_TIMEOUT_MS: '5000' };

const PUBLISH = `mutation ($input: PublishEventInput!) {
  publishEvent(input: $input) { __typename ... on PublishEventPayload { event { id } } }
}`;

/** What a fault acts on, and the progress of the load it can wait for. */
export interface UnderLoad {
  api: HeraldProcess;
  /** The worker running now. */
  worker: HeraldProcess;
  /** Herald's subject and stream prefix. */
  prefix: string;
  /** Starts a worker in place of the current one, which the fault has done away with. */
  replaceWorker(): Promise<void>;
  accepted(): number;
  refused(): number;
}

/** What happened to the events of one fault run. */
export interface FaultRun {
  /** Mutations sent; each is accepted, refused, or (a problem) still unanswered. */
  sent: number;
  /** Mutations answered with the event: Herald owes their deliveries. */
  accepted: number;
  /** Mutations answered with an error or not within the request timeout, by reason. */
  refused: number;
  refusals: Map<string, number>;
  /** Accepted events × webhooks. */
  expected: number;
  /** Distinct deliveries of accepted events that reached their receiver. */
  delivered: number;
  lost: number;
  /** Arrivals of a webhook-id already seen. */
  duplicates: number;
  /** Deliveries of events whose mutation was refused, but which were stored all the same. */
  unconfirmed: number;
  db: DatabaseLedger;
  /** From the fault until the service was back. */
  downMs: number;
  /** The longest stretch, from the fault on, in which no new delivery arrived. */
  gapMs: number;
  /** From the fault until the last delivery of the events accepted before the service was back. */
  recoveryMs: number;
  /** Why the ledger does not hold; empty when it does. */
  problems: string[];
  /** The last lines of every Herald process, when there are problems. */
  tails: Record<string, string[]>;
}

interface DatabaseLedger {
  /** Accepted events found in the events table. */
  stored: number;
  /** Events not yet matched to webhooks. */
  undispatched: number;
  deliveries: number;
  succeeded: number;
  /** Succeeded deliveries of accepted events. */
  acceptedSucceeded: number;
}

const started = performance.now();
const progress = (what: string) =>
  console.error(`  ${((performance.now() - started) / 1000).toFixed(1).padStart(6)} s  ${what}`);

const describe = (error: unknown) =>
  error instanceof Error ? `${error.name}: ${error.message.slice(0, 120)}` : String(error);

/**
 * Runs Herald (API and worker processes) on `at` with a tenant whose webhooks lead to local
 * receivers, publishes events through the publishEvent mutation at a constant rate, calls `inject`
 * once deliveries flow, then waits for every accepted event to reach every receiver and for the
 * database to show every delivery SUCCEEDED, and takes the ledger.
 */
export async function underLoad(
  at: Services,
  inject: (h: UnderLoad) => Promise<void>,
  env: Record<string, string> = {},
): Promise<FaultRun> {
  return withCleanup(async (defer) => {
    const receivers = await Promise.all(Array.from({ length: load.webhooks }, () => new Receiver().start()));
    defer(() => Promise.all(receivers.map((r) => r.close())));
    const space = await benchSpace('fault', at);
    defer(() => space.drop());
    const settings = heraldEnv(space, { ...heraldSettings, ...env });
    const processes: Record<string, HeraldProcess> = {};
    const api = await startHerald('api', settings);
    processes.api = api;
    defer(() => api.stop());
    let worker = await startHerald('worker', settings);
    processes.worker = worker;
    defer(() => worker.stop());

    const type = 'faults.order.created';
    const tenant = await setUpTenant(api.url!, settings.HERALD_ADMIN_TOKEN, {
      type,
      webhookUrls: receivers.map((r) => r.url),
    });
    const gql = graphqlClient(api.url!, tenant.token, { timeoutMs: load.requestTimeoutMs });
    /** Accepted events: id → when the mutation answered. */
    const accepted = new Map<string, number>();
    const refusals = new Map<string, number>();
    let refused = 0;
    const h: UnderLoad = {
      api,
      get worker() {
        return worker;
      },
      prefix: space.prefix,
      async replaceWorker() {
        worker = await startHerald('worker', settings);
        processes[`worker ${Object.keys(processes).length}`] = worker;
      },
      accepted: () => accepted.size,
      refused: () => refused,
    };

    let faultAt = NaN;
    let restoredAt = NaN;
    const fault = async () => {
      const flowing = await until(
        () =>
          accepted.size >= (load.rate * load.faultAfterMs) / 1000 && receivers.every((r) => r.received > 0),
        load.durationMs,
      );
      if (!flowing) throw new Error('deliveries did not flow before the fault was due');
      faultAt = Date.now();
      progress(`fault injected after ${h.accepted()} accepted events`);
      await inject(h);
      restoredAt = Date.now();
      progress(`service back after ${((restoredAt - faultAt) / 1000).toFixed(1)} s`);
    };
    const [loaded, injected] = await Promise.allSettled([
      openLoad({
        rate: load.rate,
        warmupMs: 0,
        steadyMs: load.durationMs,
        drainMs: load.requestTimeoutMs + 5_000,
        send: async (_i, scheduledAt) => {
          try {
            const { publishEvent } = await gql<{
              publishEvent: { __typename: string; event?: { id: string } };
            }>(PUBLISH, {
              input: {
                type,
                current: payload(performance.timeOrigin + scheduledAt),
                idempotencyKey: randomUUID(),
              },
            });
            if (!publishEvent.event) throw new Error(`publishEvent answered ${publishEvent.__typename}`);
            accepted.set(rawId(publishEvent.event.id), Date.now());
          } catch (error) {
            const reason = describe(error);
            refused++;
            refusals.set(reason, (refusals.get(reason) ?? 0) + 1);
            throw error;
          }
        },
      }),
      fault(),
    ]);
    if (injected.status === 'rejected') throw injected.reason;
    if (loaded.status === 'rejected') throw loaded.reason;
    progress(`load over: ${accepted.size} accepted, ${refused} refused; waiting for the deliveries`);

    const missing = () =>
      receivers.reduce((n, r) => n + [...accepted.keys()].filter((id) => !r.firstArrival.has(id)).length, 0);
    const deadline = Date.now() + load.settleTimeoutMs;
    await until(() => missing() === 0, load.settleTimeoutMs);
    progress(`receivers settled with ${missing()} missing; checking the database`);
    const db = new pg.Client({ connectionString: space.databaseUrl });
    await db.connect();
    defer(() => db.end());
    const ids = [...accepted.keys()];
    const ledger = async (): Promise<DatabaseLedger> => {
      const { rows } = await db.query<DatabaseLedger>(
        `select
           (select count(*) from events where id = any($1::uuid[]))::int as stored,
           (select count(*) from events where dispatched_at is null)::int as undispatched,
           (select count(*) from deliveries)::int as deliveries,
           (select count(*) from deliveries where status = 'SUCCEEDED')::int as succeeded,
           (select count(*) from deliveries where status = 'SUCCEEDED' and event_id = any($1::uuid[]))::int
             as "acceptedSucceeded"`,
        [ids],
      );
      return rows[0]!;
    };
    // Events whose mutation was refused but which were stored are owed too; they settle last.
    await until(
      async () => {
        const now = await ledger();
        return now.undispatched === 0 && now.succeeded === now.deliveries;
      },
      Math.max(deadline - Date.now(), 5_000),
    );
    // Stopped before counting, so that nothing still in flight turns up afterwards.
    await worker.stop();
    await api.stop();

    const expected = accepted.size * receivers.length;
    const delivered = receivers.reduce((n, r) => n + ids.filter((id) => r.firstArrival.has(id)).length, 0);
    const unconfirmed = receivers.reduce(
      (n, r) => n + [...r.firstArrival.keys()].filter((id) => !accepted.has(id)).length,
      0,
    );
    let recoveredAt = faultAt;
    for (const [id, acceptedAt] of accepted) {
      if (acceptedAt > restoredAt) continue;
      for (const r of receivers) recoveredAt = Math.max(recoveredAt, r.firstArrival.get(id) ?? NaN);
    }
    const arrivals = receivers
      .flatMap((r) => [...r.firstArrival.values()].filter((t) => t >= faultAt))
      .sort((a, b) => a - b);
    const gapMs = Math.max(0, ...arrivals.map((t, i) => t - (i === 0 ? faultAt : arrivals[i - 1]!)));
    const database = await ledger();
    const run: FaultRun = {
      sent: loaded.value.sent,
      accepted: accepted.size,
      refused,
      refusals,
      expected,
      delivered,
      lost: expected - delivered,
      duplicates: receivers.reduce((n, r) => n + r.duplicates, 0),
      unconfirmed,
      db: database,
      downMs: restoredAt - faultAt,
      gapMs,
      recoveryMs: recoveredAt - faultAt,
      problems: [],
      tails: {},
    };
    run.problems = problems(run, receivers);
    if (run.problems.length > 0) {
      run.tails = Object.fromEntries(Object.entries(processes).map(([name, p]) => [name, p.tail()]));
    }
    return run;
  });
}

/** Every way the run's ledger fails to hold. */
function problems(run: FaultRun, receivers: Receiver[]): string[] {
  const found: string[] = [];
  const { db } = run;
  if (run.lost > 0) found.push(`${run.lost} deliveries of accepted events never arrived`);
  if (run.sent !== run.accepted + run.refused)
    found.push(`${run.sent - run.accepted - run.refused} mutations never answered`);
  if (db.stored !== run.accepted)
    found.push(`${run.accepted - db.stored} accepted events missing in the database`);
  if (db.undispatched > 0) found.push(`${db.undispatched} events never dispatched`);
  if (db.succeeded !== db.deliveries) found.push(`${db.deliveries - db.succeeded} deliveries not SUCCEEDED`);
  if (db.acceptedSucceeded !== run.expected)
    found.push(`${db.acceptedSucceeded} SUCCEEDED deliveries of accepted events, ${run.expected} expected`);
  if (receivers.some((r) => r.seen.size !== r.firstArrival.size))
    found.push('a receiver saw more webhook-ids than events: one event was delivered as two deliveries');
  return found;
}
