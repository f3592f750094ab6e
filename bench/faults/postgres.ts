import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { freePort } from './ports.ts';

const run = promisify(execFile);
/** The private cluster's name; a cluster of this name is the suite's own, left behind by a run that died. */
const CLUSTER = 'herald_faults';

/** The clusters of the machine, as pg_lsclusters lists them. */
async function clusters() {
  const { stdout } = await run('pg_lsclusters', ['--no-header']);
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => {
      const [version, name] = line.trim().split(/\s+/) as [string, string];
      return { version, name };
    });
}

/**
 * A PostgreSQL cluster of its own (pg_createcluster, trust auth on loopback), so a fault may stop
 * and start it without touching the shared one. Needs root or the postgres user.
 */
export async function privatePostgres() {
  const existing = await clusters();
  for (const leftover of existing.filter((c) => c.name === CLUSTER)) {
    await run('pg_dropcluster', ['--stop', leftover.version, CLUSTER]);
  }
  const version = (existing.find((c) => c.name === 'main') ?? existing[0])?.version;
  if (!version) throw new Error('no PostgreSQL cluster on this machine to take the version from');
  const port = await freePort();
  await run('pg_createcluster', [version, CLUSTER, '-p', String(port), '--', '--auth=trust']);
  const ctl = async (action: 'start' | 'stop') => {
    await run('pg_ctlcluster', ['--skip-systemctl-redirect', version, CLUSTER, action]);
  };
  const dispose = async () => {
    await run('pg_dropcluster', ['--stop', version, CLUSTER]);
  };
  await ctl('start').catch(async (error: unknown) => {
    await dispose();
    throw error;
  });
  return {
    url: `postgresql://postgres@127.0.0.1:${port}`,
    /** A fast shutdown: open sessions are cut, as when a server goes away. */
    stop: () => ctl('stop'),
    start: () => ctl('start'),
    dispose,
  };
}
