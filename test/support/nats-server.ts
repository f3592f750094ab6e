import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { waitFor } from './wait.ts';

const binary = process.platform === 'linux' ? '/usr/sbin/nats-server' : 'nats-server';

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

const answers = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = createConnection({ port, host: '127.0.0.1' }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
  });

/** A JetStream server of a test's own, on loopback, that the test may stop and start at will. */
export async function privateNatsServer() {
  const port = await freePort();
  const storeDir = mkdtempSync(join(tmpdir(), 'herald-nats-'));
  let child: ChildProcess | undefined;

  const start = async () => {
    child = spawn(binary, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', storeDir], {
      stdio: 'ignore',
    });
    await waitFor(() => answers(port), { what: `nats-server on port ${port}` });
  };
  const stop = async () => {
    const exited = new Promise((resolve) => child?.once('exit', resolve));
    child?.kill('SIGKILL');
    await exited;
    child = undefined;
  };

  await start();
  return {
    url: `127.0.0.1:${port}`,
    start,
    stop,
    async dispose() {
      if (child) await stop();
      rmSync(storeDir, { recursive: true, force: true });
    },
  };
}
