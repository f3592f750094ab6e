/**
 * The raw live fan-out Herald is compared with: an ordered JetStream consumer on the attempt
 * subject (as Herald's live hub has) and a plain `ws` server that sends every message, as the
 * graphql-ws `next` frame Herald would send, to every open socket. One JSON.parse and one
 * serialisation per message, whatever the number of sockets; no auth, no GraphQL: the floor.
 *
 * Runs as its own process: node bench/raw/live.ts <natsUrl> <stream> <subject>
 */
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { DeliverPolicy, jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { WebSocketServer } from 'ws';
import type { AttemptMessage } from '../../src/bus/contracts.ts';

const [natsUrl, stream, subject] = process.argv.slice(2) as [string, string, string];

const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
await new Promise((resolve) => server.once('listening', resolve));
const nc = await connect({ servers: natsUrl });
const consumer = await jetstream(nc).consumers.get(stream, {
  filter_subjects: subject,
  deliver_policy: DeliverPolicy.New,
});
const messages = await consumer.consume();
process.send?.({ port: (server.address() as AddressInfo).port });

const globalId = (type: string, id: string) => Buffer.from(`${type}:${id}`).toString('base64');
/** Every socket gets the same subscription id: a graphql-ws client's is a UUID too. */
const subscriptionId = randomUUID();
const decoder = new TextDecoder();

for await (const msg of messages) {
  const attempt = JSON.parse(decoder.decode(msg.data)) as AttemptMessage;
  const deliveryAttempted = {
    deliveryId: globalId('Delivery', attempt.deliveryId),
    webhookId: globalId('Webhook', attempt.webhookId),
    attempt: attempt.attempt,
    status: attempt.status,
    statusCode: attempt.statusCode,
    responseTimeMs: attempt.responseTimeMs,
    response: attempt.response,
    createdAt: attempt.createdAt,
    streamCursor: Buffer.from(`attempts:${msg.seq}`).toString('base64url'),
  };
  const frame = Buffer.from(
    JSON.stringify({ id: subscriptionId, type: 'next', payload: { data: { deliveryAttempted } } }),
  );
  for (const socket of server.clients) socket.send(frame, { binary: false });
}
