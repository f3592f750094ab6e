import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a receiver answers: at once with 204, never (a hanging endpoint), or with a 500. */
export type Behaviour = 'ok' | 'hang' | 'fail';

/**
 * A local webhook endpoint that counts deliveries by event id. Bodies carry `current.t`, the
 * wall-clock time the event was scheduled to be sent, so latency is measured end to end.
 */
export class Receiver {
  readonly seen = new Map<string, number>();
  readonly latencies: number[] = [];
  private readonly server: Server;
  private behaviour: Behaviour;
  url = '';
  /** Only arrivals after this wall-clock time count towards latency. */
  measureFrom = Infinity;
  measureTo = Infinity;
  received = 0;

  constructor(behaviour: Behaviour = 'ok') {
    this.behaviour = behaviour;
    this.server = createServer((req, res) => {
      if (this.behaviour === 'hang') {
        req.resume();
        return;
      }
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        if (this.behaviour === 'fail') {
          res.writeHead(500).end();
          return;
        }
        const now = Date.now();
        this.received++;
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { id: string; current: { t: number } };
        const count = this.seen.get(body.id) ?? 0;
        this.seen.set(body.id, count + 1);
        if (count === 0 && body.current.t >= this.measureFrom && body.current.t < this.measureTo) {
          this.latencies.push(now - body.current.t);
        }
        res.writeHead(204).end();
      });
    });
    this.server.keepAliveTimeout = 60_000;
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hook`;
    return this;
  }

  get delivered(): number {
    return this.seen.size;
  }

  get duplicates(): number {
    return this.received - this.seen.size;
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}

/** A body of about `bytes` bytes with the scheduled time in it. */
export function payload(scheduledAt: number, bytes = 1024) {
  return { t: scheduledAt, pad: 'x'.repeat(Math.max(0, bytes - 40)) };
}
