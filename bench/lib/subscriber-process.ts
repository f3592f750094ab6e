/**
 * The subscriber process of bench/lib/subscribers.ts: `count` subscribers, one WebSocket each, as
 * consoles hold them. Takes its orders, then `status` and `report` requests, over IPC.
 */
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { attemptSubscription, type SubscriberOrders, type SubscriberReport } from './subscribers.ts';

/** Connections opened at once: the server authenticates each before it subscribes. */
const CONNECTING = 50;

interface Subscriber {
  seen: Uint8Array;
  probed: boolean;
  close: () => Promise<void>;
}

const orders = await new Promise<SubscriberOrders>((resolve) => process.once('message', resolve));
const subscribers: Subscriber[] = [];
const timings: number[] = [];
const firstErrors: string[] = [];
let probed = 0;
let received = 0;
let unique = 0;
let duplicates = 0;
let stray = 0;
let errors = 0;
let stopping = false;

function fail(error: unknown): void {
  if (stopping) return;
  errors++;
  if (firstErrors.length < 5)
    firstErrors.push(error instanceof Error ? error.message : JSON.stringify(error));
}

function onFrame(subscriber: Subscriber, response: string | null | undefined, receivedAt: number): void {
  const body = JSON.parse(response ?? 'null') as { i: number; t: number } | { probe: number } | null;
  if (body === null) return fail(new Error('a frame without a response'));
  if ('probe' in body) {
    if (!subscriber.probed) probed++;
    subscriber.probed = true;
    return;
  }
  received++;
  if (!(body.i >= 0 && body.i < orders.frames)) {
    stray++;
    return;
  }
  if (subscriber.seen[body.i]) {
    duplicates++;
    return;
  }
  subscriber.seen[body.i] = 1;
  unique++;
  timings.push(body.t, receivedAt);
}

const now = () => performance.timeOrigin + performance.now();
interface AttemptFrame {
  data?: { deliveryAttempted?: { response: string | null } } | null;
  errors?: unknown;
}

/** A graphql-ws subscription on a connection of its own; resolves once the connection is acknowledged. */
function graphqlSubscriber(): Promise<Subscriber> {
  const client: Client = createClient({
    url: orders.url,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${orders.token}` },
    retryAttempts: 0,
  });
  const subscriber: Subscriber = {
    seen: new Uint8Array(orders.frames),
    probed: false,
    close: async () => {
      await client.dispose();
    },
  };
  return new Promise((resolve, reject) => {
    client.on('connected', () => resolve(subscriber));
    client.on('closed', (event) => {
      reject(new Error(`closed before it was acknowledged: ${JSON.stringify(event)}`));
      fail(new Error(`socket closed: ${(event as { code?: number }).code}`));
    });
    client.subscribe(
      { query: attemptSubscription, variables: { webhookId: orders.webhookId } },
      {
        next: (result: AttemptFrame) => {
          const at = now();
          if (result.errors) return fail(result.errors);
          onFrame(subscriber, result.data?.deliveryAttempted?.response, at);
        },
        error: fail,
        complete: () => fail(new Error('the subscription completed')),
      },
    );
  });
}

/** A plain socket that is sent the same frames; resolves once it is open. */
function rawSubscriber(): Promise<Subscriber> {
  const socket = new WebSocket(orders.url);
  const subscriber: Subscriber = {
    seen: new Uint8Array(orders.frames),
    probed: false,
    close: async () => {
      const closed = new Promise((resolve) => socket.once('close', resolve));
      socket.close();
      await closed;
    },
  };
  socket.on('message', (data: Buffer) => {
    const at = now();
    const frame = JSON.parse(data.toString()) as { payload: AttemptFrame };
    onFrame(subscriber, frame.payload.data?.deliveryAttempted?.response, at);
  });
  socket.on('error', fail);
  socket.on('close', () => fail(new Error('socket closed')));
  return new Promise((resolve, reject) => {
    socket.once('open', () => resolve(subscriber));
    socket.once('error', reject);
  });
}

try {
  const open = orders.protocol === 'graphql-ws' ? graphqlSubscriber : rawSubscriber;
  let next = 0;
  await Promise.all(
    Array.from({ length: CONNECTING }, async () => {
      while (next < orders.count) {
        next++;
        subscribers.push(await open());
      }
    }),
  );
  process.send!({ type: 'connected' });
} catch (error) {
  process.send!({ type: 'failed', error: (error as Error).message });
  process.exit(1);
}

process.on('message', (request: { type: 'status' | 'report' }) => {
  const status = { probed, unique, errors };
  if (request.type === 'status') return process.send!({ type: 'status', ...status });
  const report: SubscriberReport = {
    ...status,
    received,
    duplicates,
    stray,
    firstErrors,
    timings: Float64Array.from(timings),
  };
  process.send!({ type: 'report', ...report });
});

process.once('SIGTERM', () => {
  stopping = true;
  void Promise.allSettled(subscribers.map((s) => s.close())).then(() => process.exit(0));
});
