import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How a receiver answers: at once with 204, never (a hanging endpoint), or with a 500. */
export type Behaviour = 'ok' | 'hang' | 'fail';

/**
 * A local webhook endpoint that counts deliveries by their `webhook-id` header (the delivery's id,
 * the same on every attempt; the raw pipeline sends none, so there the event id stands in). Bodies
 * carry `current.t`, the wall-clock time the event was scheduled to be sent, so latency is measured
 * end to end.
 */
export class Receiver {
  /** Arrivals per webhook-id. */
  readonly seen = new Map<string, number>();
  /** Wall-clock time of each event's first arrival, by event id. */
  readonly firstArrival = new Map<string, number>();
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
        // The publisher's clock (same process): Date.now() is whole milliseconds, and would put
        // sub-millisecond arrivals before their scheduled time.
        const now = performance.timeOrigin + performance.now();
        this.received++;
        const body = JSON.parse(Buffer.concat(chunks).toString()) as { id: string; current: { t: number } };
        const header = req.headers['webhook-id'];
        const key = typeof header === 'string' ? header : body.id;
        const count = this.seen.get(key) ?? 0;
        this.seen.set(key, count + 1);
        if (!this.firstArrival.has(body.id)) this.firstArrival.set(body.id, now);
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
