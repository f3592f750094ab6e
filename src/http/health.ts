import type { ServerResponse } from 'node:http';
import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.ts';

export type Dependency = 'ok' | 'unavailable';

export interface Health {
  /** Whether each dependency answers within a second; details of a failure go to the log. */
  check(): Promise<{ database: Dependency; bus: Dependency }>;
}

const send = (res: ServerResponse, status: number, body: unknown) => {
  res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
};

/** GET /healthz: the process answers. */
export function liveness(res: ServerResponse): void {
  send(res, 200, { status: 'ok' });
}

/** GET /readyz: 200 while the database and the bus answer and the server is not stopping. */
export async function readiness(res: ServerResponse, health: Health, accepting: boolean): Promise<void> {
  if (!accepting) return send(res, 503, { status: 'stopping' });
  const dependencies = await health.check();
  const ready = Object.values(dependencies).every((state) => state === 'ok');
  send(res, ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', ...dependencies });
}

/** Health from a probe per dependency: each must answer within a second. */
export function readinessChecks(
  probes: { database: () => Promise<unknown>; bus: () => Promise<unknown> },
  logger: Logger,
): Health {
  const probe = async (name: string, work: () => Promise<unknown>): Promise<Dependency> => {
    try {
      await Promise.race([
        work(),
        delay(1_000).then(() => Promise.reject(new Error('no answer within 1 s'))),
      ]);
      return 'ok';
    } catch (error) {
      logger.warn({ err: error, dependency: name }, 'readiness check failed');
      return 'unavailable';
    }
  };
  return {
    async check() {
      const [database, bus] = await Promise.all([
        probe('database', probes.database),
        probe('NATS', probes.bus),
      ]);
      return { database, bus };
    },
  };
}
