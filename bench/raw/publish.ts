/**
 * The raw baseline of S1 (publishEvent): a node:http handler that checks the bearer token against
 * the one it was given, parses the JSON body and publishes the event to JetStream as Herald does:
 * the same subject (`<prefix>.events.<tenant>.<type>`), the same message body and the same msgID
 * (a digest of tenant and idempotency key), awaiting the stream's ack before answering.
 *
 * What it does not do: look the token up in PostgreSQL, parse, validate and execute GraphQL, check
 * the input and the payload size, check the type against the catalog, store the event row (Herald's
 * outbox) or mark it published, replay a repeated idempotency key.
 *
 * Runs as its own process: node bench/raw/publish.ts <natsUrl> <prefix> <tenantId> <token>
 */
import { createHash } from 'node:crypto';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { v7 } from 'uuid';
import { serve } from './serve.ts';

const [natsUrl, prefix, tenantId, token] = process.argv.slice(2) as [string, string, string, string];
const js = jetstream(await connect({ servers: natsUrl }));
const encoder = new TextEncoder();

serve(token, async ({ body }) => {
  const { type, current } = body as { type: string; current: unknown };
  const parts = type.split('.');
  const [action, model, module] = [parts.pop(), parts.pop(), parts.pop() ?? null];
  const id = v7();
  const message = {
    v: 1,
    id,
    tenantId,
    type,
    meta: { module, model, action },
    current,
    previous: null,
    occurredAt: new Date().toISOString(),
    idempotencyKey: id,
  };
  const ack = await js.publish(
    `${prefix}.events.${tenantId}.${type}`,
    encoder.encode(JSON.stringify(message)),
    {
      msgID: createHash('sha256').update(`${tenantId}\n${id}`).digest('base64url'),
    },
  );
  return { id, duplicate: ack.duplicate };
});
