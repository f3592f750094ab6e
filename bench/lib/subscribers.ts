import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

/**
 * Live subscribers in a process of their own (bench/lib/subscriber-process.ts), so that neither
 * the server measured nor the load generator pays for them. Every frame's `response` carries
 * `{ i, t }`: the publish's index and its scheduled wall-clock time (or `{ probe }` before the load).
 */

export interface SubscriberOrders {
  /** graphql-ws subscriptions to deliveryAttempted, or plain sockets that are sent the same frames. */
  protocol: 'graphql-ws' | 'raw';
  /** ws:// address of the server. */
  url: string;
  count: number;
  /** Load frames each subscriber can tell apart (indexes 0 … frames − 1). */
  frames: number;
  /** graphql-ws only: the bearer token and the webhook's global id. */
  token?: string;
  webhookId?: string;
}

export interface SubscriberStatus {
  /** Subscribers that received at least one probe: from then on they are live. */
  probed: number;
  /** Distinct (subscriber, load frame) pairs received. */
  unique: number;
  /** Errors, unexpected completions and sockets closed under a subscriber. */
  errors: number;
}

export interface SubscriberReport extends SubscriberStatus {
  received: number;
  duplicates: number;
  /** Load frames whose index is out of range: a frame nobody published. */
  stray: number;
  /** The first few errors, as text. */
  firstErrors: string[];
  /** Per load frame received, first receipt only: scheduled time, then receive time (wall clock, ms). */
  timings: Float64Array;
}

/** The graphql-ws document each subscriber runs: fields a console shows, none that read the database. */
export const attemptSubscription = `subscription ($webhookId: ID) {
  deliveryAttempted(webhookId: $webhookId) {
    deliveryId webhookId attempt status statusCode responseTimeMs response createdAt streamCursor
  }
}`;

type Reply = ({ type: 'status' } & SubscriberStatus) | ({ type: 'report' } & SubscriberReport);

export class Subscribers {
  private readonly child: ChildProcess;

  private constructor(child: ChildProcess) {
    this.child = child;
  }

  /** Forks the subscriber process and resolves once every subscriber is connected. */
  static async start(orders: SubscriberOrders): Promise<Subscribers> {
    const child = fork(fileURLToPath(new URL('./subscriber-process.ts', import.meta.url)), {
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('message', (message: { type: string; error?: string }) =>
        message.type === 'connected' ? resolve() : reject(new Error(`subscribers: ${message.error}`)),
      );
      child.once('exit', (code) => reject(new Error(`the subscriber process exited with ${code}`)));
      child.send(orders);
    });
    return new Subscribers(child);
  }

  get pid(): number {
    return this.child.pid!;
  }

  status(): Promise<SubscriberStatus> {
    return this.ask('status');
  }

  report(): Promise<SubscriberReport> {
    return this.ask('report');
  }

  async stop(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    this.child.kill('SIGTERM');
    await exited;
  }

  private ask<T extends Reply['type']>(type: T): Promise<Extract<Reply, { type: T }>> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`the subscriber process exited with ${code}`));
      const onMessage = (message: Reply) => {
        if (message.type !== type) return;
        this.child.off('message', onMessage);
        this.child.off('exit', onExit);
        resolve(message as Extract<Reply, { type: T }>);
      };
      this.child.on('message', onMessage);
      this.child.once('exit', onExit);
      this.child.send({ type });
    });
  }
}
