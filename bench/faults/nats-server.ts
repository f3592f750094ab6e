import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { until } from '../lib/measure.ts';
import { answers, freePort } from './ports.ts';

const binary = '/usr/sbin/nats-server';

/** One nats-server with JetStream, which a fault may kill and start again on its port and store. */
export class NatsNode {
  readonly name: string;
  readonly port: number;
  private readonly args: string[];
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();

  constructor(name: string, port: number, args: string[]) {
    this.name = name;
    this.port = port;
    this.args = args;
  }

  get url(): string {
    return `127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    const child = spawn(binary, this.args, { stdio: 'ignore' });
    let gone = false;
    this.child = child;
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        gone = true;
        resolve();
      }),
    );
    if (!(await until(async () => gone || (await answers(this.port)), 30_000)) || gone) {
      await this.kill();
      throw new Error(`nats-server ${this.name} did not start on port ${this.port}`);
    }
  }

  /** SIGKILL by default: the server gets no chance to flush or say goodbye. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.child?.kill(signal);
    await this.exited;
    this.child = undefined;
  }
}

/** A single JetStream server of its own, its store under a temporary directory. */
export async function natsServer() {
  const dir = mkdtempSync(join(tmpdir(), 'herald-faults-nats-'));
  const port = await freePort();
  const node = new NatsNode('n1', port, ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', dir]);
  const dispose = async () => {
    await node.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  await node.start().catch(async (error: unknown) => {
    await dispose();
    throw error;
  });
  return { url: node.url, node, dispose };
}

/**
 * A cluster of `size` JetStream servers on loopback, each with its name, client and route ports and
 * store directory; ready once it can place a stream with a replica on every node.
 */
export async function natsCluster(size = 3) {
  const dir = mkdtempSync(join(tmpdir(), 'herald-faults-cluster-'));
  const ports: { client: number; route: number }[] = [];
  for (let i = 0; i < size; i++) ports.push({ client: await freePort(), route: await freePort() });
  const nodes = ports.map((own, i) => {
    const name = `n${i + 1}`;
    const routes = ports.filter((p) => p !== own).map((p) => `nats://127.0.0.1:${p.route}`);
    return new NatsNode(name, own.client, [
      ...['-a', '127.0.0.1', '-p', String(own.client), '-n', name, '-js', '-sd', join(dir, name)],
      ...['--cluster_name', 'herald_faults', '-cluster', `nats://127.0.0.1:${own.route}`],
      ...['-routes', routes.join(',')],
    ]);
  });
  const url = nodes.map((n) => n.url).join(',');
  const dispose = async () => {
    await Promise.all(nodes.map((n) => n.kill()));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await Promise.all(nodes.map((n) => n.start()));
    if (!(await until(() => placesReplicatedStream(url, size), 60_000))) {
      throw new Error(`the ${size}-node NATS cluster did not form`);
    }
  } catch (error) {
    await dispose();
    throw error;
  }
  return { url, nodes, dispose };
}

/** Whether the cluster elected its JetStream leader and can place a stream on `replicas` nodes. */
async function placesReplicatedStream(url: string, replicas: number): Promise<boolean> {
  let nc: NatsConnection | undefined;
  try {
    nc = await connect({ servers: url.split(',') });
    const jsm = await jetstreamManager(nc);
    await jsm.streams.add({ name: 'FAULTS_PROBE', subjects: ['faults.probe'], num_replicas: replicas });
    await jsm.streams.delete('FAULTS_PROBE');
    return true;
  } catch {
    return false;
  } finally {
    await nc?.close();
  }
}

/** The name of the server leading a stream's replicas, or those of one of its durable consumers. */
export async function leaderOf(url: string, stream: string, durable?: string): Promise<string> {
  const nc = await connect({ servers: url.split(',') });
  try {
    const jsm = await jetstreamManager(nc);
    const info = durable ? await jsm.consumers.info(stream, durable) : await jsm.streams.info(stream);
    const leader = info.cluster?.leader;
    if (!leader) throw new Error(`${durable ?? stream} has no leader`);
    return leader;
  } finally {
    await nc.close();
  }
}
