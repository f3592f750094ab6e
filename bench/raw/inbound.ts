/**
 * The raw baseline of S8 (inbound requests): a node:http handler doing the durable work Herald's
 * receiver does, without Herald: read the body, check its HMAC-SHA256 (hex, `x-signature`) in
 * constant time, parse the JSON, store in ONE statement the request (its bytes, their SHA-256 and
 * the headers), the event and the event's outbox entry, publish the event to JetStream with a
 * msgID, answer 200.
 *
 * What it does not do: look the source up, rate-limit, redact headers, check the Content-Type,
 * the delivery-id dedupe (no unique index), the catalog check, the live-tail announcement and its
 * outbox, deleting published outbox entries.
 *
 * Runs as its own process: node bench/raw/inbound.ts <databaseUrl> <natsUrl> <subject> <secret>
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jetstream } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { v7 } from 'uuid';

const [databaseUrl, natsUrl, subject, secret] = process.argv.slice(2) as [string, string, string, string];
const pool = new pg.Pool({ connectionString: databaseUrl, max: 20 });
await pool.query(`
  create table if not exists raw_inbound_requests (id uuid primary key, headers jsonb not null, body bytea not null,
    body_sha256 text not null, delivery_id text, event_id uuid not null, created_at timestamptz not null);
  create table if not exists raw_inbound_events (id uuid primary key, type text not null, current jsonb not null,
    created_at timestamptz not null);
  create table if not exists raw_inbound_outbox (event_id uuid primary key);`);
const js = jetstream(await connect({ servers: natsUrl }));
const encoder = new TextEncoder();

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const given = Buffer.from(String(req.headers['x-signature'] ?? ''), 'hex');
    const expected = createHmac('sha256', secret).update(body).digest();
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      res.writeHead(401).end();
      return;
    }
    const current = JSON.parse(body.toString('utf8')) as unknown;
    const id = v7();
    const eventId = v7();
    const now = new Date();
    pool
      .query(
        `with r as (insert into raw_inbound_requests values ($1, $2, $3, $4, $5, $6, $7)),
              e as (insert into raw_inbound_events values ($6, 'bench.inbound.received', $8, $7)),
              o as (insert into raw_inbound_outbox values ($6))
         select 1`,
        [
          id,
          JSON.stringify(req.headers),
          body,
          createHash('sha256').update(body).digest('hex'),
          req.headers['x-delivery-id'] ?? null,
          eventId,
          now,
          JSON.stringify(current),
        ],
      )
      .then(() =>
        js.publish(subject, encoder.encode(JSON.stringify({ id: eventId, current })), { msgID: eventId }),
      )
      .then(
        () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ id })),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
  });
});
server.keepAliveTimeout = 60_000;
server.listen(0, '127.0.0.1', () => {
  process.send?.(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
});
