/**
 * The raw delivery pipeline Herald is compared with: a JetStream durable consumer, an undici POST
 * to every endpoint, and the attempts written to PostgreSQL in batches; a message is acked once
 * its rows are stored. No signing, no retries, no isolation, no audit: the floor of the work.
 *
 * Runs as its own process: node bench/raw/pipeline.ts <databaseUrl> <natsUrl> <stream> <urls,…>
 */
import { randomUUID } from 'node:crypto';
import { AckPolicy, jetstream, jetstreamManager, type JsMsg } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';
import { Agent, request } from 'undici';

const [databaseUrl, natsUrl, stream, urlList] = process.argv.slice(2) as [string, string, string, string];
const urls = urlList.split(',');
const CONCURRENCY = 256;

const pool = new pg.Pool({ connectionString: databaseUrl, max: 10 });
await pool.query(
  'create table if not exists raw_attempts (id uuid primary key, event_id text not null, url text not null, status int not null, created_at timestamptz not null)',
);
const nc = await connect({ servers: natsUrl });
const jsm = await jetstreamManager(nc);
await jsm.consumers.add(stream, {
  durable_name: 'raw',
  ack_policy: AckPolicy.Explicit,
  max_ack_pending: CONCURRENCY * 4,
});
const consumer = await jetstream(nc).consumers.get(stream, 'raw');
const dispatcher = new Agent({ connections: 64, keepAliveTimeout: 60_000 });

type Row = [string, string, string, number, Date];
let batch: { rows: Row[]; messages: JsMsg[] } = { rows: [], messages: [] };
let flushing: Promise<void> = Promise.resolve();

/** Writes the batch in one multi-row insert, then acks its messages. */
function flush(): void {
  if (batch.rows.length === 0) return;
  const { rows, messages } = batch;
  batch = { rows: [], messages: [] };
  const values = rows.map(
    (_, i) => `($${i * 5 + 1}, $${i * 5 + 2}, $${i * 5 + 3}, $${i * 5 + 4}, $${i * 5 + 5})`,
  );
  flushing = flushing.then(async () => {
    await pool.query(`insert into raw_attempts values ${values.join(',')}`, rows.flat());
    for (const m of messages) m.ack();
  });
}
setInterval(flush, 10).unref();

async function handle(msg: JsMsg): Promise<void> {
  const body = msg.data;
  const eventId = (JSON.parse(new TextDecoder().decode(body)) as { id: string }).id;
  const rows = await Promise.all(
    urls.map(async (url): Promise<Row> => {
      const response = await request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        dispatcher,
      });
      await response.body.dump();
      return [randomUUID(), eventId, url, response.statusCode, new Date()];
    }),
  );
  batch.rows.push(...rows);
  batch.messages.push(msg);
  if (batch.rows.length >= 500) flush();
}

const running = new Set<Promise<void>>();
const messages = await consumer.consume({ max_messages: CONCURRENCY });
process.send?.('ready');
for await (const msg of messages) {
  const task = handle(msg).finally(() => running.delete(task));
  running.add(task);
  if (running.size >= CONCURRENCY) await Promise.race(running);
}
