import { streams } from '../../src/bus/contracts.ts';
import { services } from '../lib/herald.ts';
import { until } from '../lib/measure.ts';
import { withCleanup } from './cleanup.ts';
import { leaderOf, natsCluster, natsServer } from './nats-server.ts';
import { privatePostgres } from './postgres.ts';
import { load, underLoad, type FaultRun } from './under-load.ts';

export interface Fault {
  title: string;
  run(): Promise<FaultRun>;
}

/** How long an outage lasts, at most, when its end waits for the load to show it. */
const OUTAGE_LIMIT_MS = 15_000;

/** Each fault hits Herald mid-load; the services it breaks are its own, never the shared ones. */
export const faults: Record<string, Fault> = {
  /** The same run without a fault: the figures the others compare with (backlog, duplicates). */
  none: {
    title: 'no fault (control)',
    run: () => underLoad(services, async () => {}),
  },

  'worker-kill': {
    title: 'worker SIGKILLed, a new one started',
    run: () =>
      underLoad(services, async (h) => {
        await h.worker.kill();
        await h.replaceWorker();
      }),
  },

  'nats-restart': {
    title: 'nats-server SIGKILLed, restarted on its store',
    run: () =>
      withCleanup(async (defer) => {
        const nats = await natsServer();
        defer(() => nats.dispose());
        return underLoad({ postgres: services.postgres, nats: nats.url }, async (h) => {
          await nats.node.kill();
          // Down until the API has taken three seconds' worth of events it could not publish.
          const before = h.accepted();
          await until(() => h.accepted() >= before + load.rate * 3, OUTAGE_LIMIT_MS);
          await nats.node.start();
        });
      }),
  },

  'postgres-restart': {
    title: 'PostgreSQL stopped (fast), started again',
    run: () =>
      withCleanup(async (defer) => {
        const postgres = await privatePostgres();
        defer(() => postgres.dispose());
        return underLoad({ postgres: postgres.url, nats: services.nats }, async (h) => {
          await postgres.stop();
          // Down until two seconds' worth of mutations were refused.
          const before = h.refused();
          await until(() => h.refused() >= before + load.rate * 2, OUTAGE_LIMIT_MS);
          await postgres.start();
        });
      }),
  },

  'nats-node-loss': {
    title: '3-node NATS cluster (R3), the dispatcher consumer leader SIGKILLed',
    run: () =>
      withCleanup(async (defer) => {
        const cluster = await natsCluster(3);
        defer(() => cluster.dispose());
        return underLoad(
          { postgres: services.postgres, nats: cluster.url },
          async (h) => {
            // The harder loss: the dispatcher's pull requests die with the node that leads its consumer.
            const leader = await leaderOf(cluster.url, streams(h.prefix).events.name, 'dispatcher');
            const node = cluster.nodes.find((n) => n.name === leader)!;
            await node.kill();
            // The two others carry four seconds of load, then the lost node comes back.
            const before = h.accepted();
            await until(() => h.accepted() >= before + load.rate * 4, OUTAGE_LIMIT_MS);
            await node.start();
          },
          { HERALD_NATS_REPLICAS: '3' },
        );
      }),
  },
};
