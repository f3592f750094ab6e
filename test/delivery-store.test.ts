import { randomBytes, randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { decode, encode, eventMessageV1 } from '../src/bus/contracts.ts';
import { loadConfig } from '../src/config.ts';
import { openOrm, type Orm } from '../src/db/orm.ts';
import { sqlRows, StatementTimeoutError } from '../src/db/raw.ts';
import { AttemptJobs, LOAD_JOBS_SQL } from '../src/deliveries/store/attempt-jobs.ts';
import { DISPATCH_SQL, EventDispatches } from '../src/deliveries/store/dispatches.ts';
import { OpenedSecrets } from '../src/deliveries/store/opened-secrets.ts';
import { SuccessRecords } from '../src/deliveries/store/successes.ts';
import { newId } from '../src/db/ids.ts';
import { DeliveryService } from '../src/deliveries/delivery.service.ts';
import { isDatabaseUnavailable } from '../src/db/unavailable.ts';
import { waitFor } from './support/wait.ts';
import { EventService } from '../src/events/event.service.ts';
import { fromMessage, toMessage, type PublishedEvent } from '../src/events/published-event.ts';
import { InvalidInputError } from '../src/errors.ts';
import { systemActor } from '../src/tenancy/actor.ts';
import { SecretBox } from '../src/util/secret-box.ts';
import { createLogger } from '../src/logger.ts';

let orm: Orm;
beforeAll(async () => {
  const config = loadConfig({ DATABASE_URL: inject('databaseUrl'), LOG_LEVEL: 'silent' });
  orm = await openOrm(config, createLogger('silent'));
});
afterAll(async () => {
  await orm?.close();
});

const rows = <T>(sql: string, params: unknown[] = []) => orm.em.fork().execute<T[]>(sql, params);

const event = (over: Partial<PublishedEvent> = {}): PublishedEvent => {
  const id = randomUUID();
  return {
    id,
    tenantId: randomUUID(),
    type: 'billing.invoice.created',
    meta: { module: 'billing', model: 'invoice', action: 'created' },
    current: { ok: true },
    previous: null,
    occurredAt: new Date(),
    idempotencyKey: id,
    ...over,
  };
};

const box = new SecretBox(randomBytes(32));

/** The pipeline's batched statements alone (the audited failure path is not among them). */
function store(statementTimeoutMs = 30_000) {
  const timed = { statementTimeoutMs };
  return {
    dispatches: new EventDispatches({ orm }, timed),
    jobs: new AttemptJobs({ orm, secrets: new OpenedSecrets(box) }, timed),
    successes: new SuccessRecords({ orm }, timed),
  };
}

describe('publishEvent: a bad event fails alone, typed, and not the publishes sharing its INSERT', () => {
  const events = () =>
    new EventService(
      {
        orm,
        eventTypes: { require: async () => {} } as never,
        outbox: { publish: async () => true } as never,
      },
      { statementTimeoutMs: 30_000 },
    );

  it('refuses a NUL character in a payload; another tenant publish goes through', async () => {
    const service = events();
    const [bad, good] = await Promise.allSettled([
      service.publish(systemActor(randomUUID()), {
        type: 'billing.invoice.created',
        current: { s: 'a\u0000b' },
      }),
      service.publish(systemActor(randomUUID()), { type: 'billing.invoice.created', current: { ok: true } }),
    ]);
    expect(bad.status === 'rejected' && bad.reason).toBeInstanceOf(InvalidInputError);
    expect(good.status).toBe('fulfilled');
  });

  it('refuses an occurredAt PostgreSQL cannot store; another tenant publish goes through', async () => {
    const service = events();
    const [bad, good] = await Promise.allSettled([
      service.publish(systemActor(randomUUID()), {
        type: 'billing.invoice.created',
        occurredAt: new Date('0000-06-01T00:00:00Z'),
      }),
      service.publish(systemActor(randomUUID()), { type: 'billing.invoice.created', current: { ok: true } }),
    ]);
    expect(bad.status === 'rejected' && bad.reason).toBeInstanceOf(InvalidInputError);
    expect(good.status).toBe('fulfilled');
  });
});

describe('dispatch: one bad event fails alone, not the events dispatched with it', () => {
  it('a host-published event with a NUL in its payload fails alone', async () => {
    const s = store();
    const [bad, good] = await Promise.allSettled([
      s.dispatches.create(event({ current: { s: '\u0000' } }), [randomUUID()]),
      s.dispatches.create(event(), [randomUUID()]),
    ]);
    expect(bad.status).toBe('rejected');
    expect(good.status).toBe('fulfilled');
  });

  it('an upper-case tenant id on the bus is read in lower case, and dispatches with its batch-mates', async () => {
    const s = store();
    const upper = event({ tenantId: randomUUID().toUpperCase() });
    const read = fromMessage(decode(eventMessageV1, encode(eventMessageV1, toMessage(upper))));
    expect(read.tenantId).toBe(upper.tenantId.toLowerCase());
    const [a, b] = await Promise.all([
      s.dispatches.create(read, [randomUUID()]),
      s.dispatches.create(event(), [randomUUID()]),
    ]);
    expect(a).toHaveLength(1);
    expect(b).toHaveLength(1);
  });
});

describe('batch statements and repeats', () => {
  it('the same event twice in one batch: one set of deliveries, both callers get it', async () => {
    const s = store();
    const e = event();
    const w = [randomUUID(), randomUUID()];
    const [a, b] = await Promise.all([s.dispatches.create(e, w), s.dispatches.create({ ...e }, w)]);
    expect(a.map((d) => d.id).sort()).toEqual(b.map((d) => d.id).sort());
    expect(a).toHaveLength(2);
    const stored = await rows<{ n: string }>('select count(*) n from deliveries where event_id = ?', [e.id]);
    expect(Number(stored[0]!.n)).toBe(2);
    // A later redelivery returns the deliveries still waiting (the union's snapshot branch).
    const again = await s.dispatches.create({ ...e }, w);
    expect(again.map((d) => d.id).sort()).toEqual(a.map((d) => d.id).sort());
    // Redelivered twice in one batch: each caller gets the waiting deliveries once.
    const [c, d] = await Promise.all([s.dispatches.create({ ...e }, w), s.dispatches.create({ ...e }, w)]);
    expect(c.map((x) => x.id).sort()).toEqual(a.map((x) => x.id).sort());
    expect(d.map((x) => x.id).sort()).toEqual(a.map((x) => x.id).sort());
  });

  it('the same successful attempt twice in one batch is stored once', async () => {
    const s = store();
    const e = event();
    const [d] = await s.dispatches.create(e, [randomUUID()]);
    const job = (await s.jobs.load(d!.id))!;
    const now = new Date();
    const success = () => ({
      id: newId(),
      tenantId: job.delivery.tenantId,
      deliveryId: job.delivery.id,
      webhookId: job.delivery.webhookId,
      attempt: 1,
      status: 'SUCCEEDED' as const,
      url: 'https://x',
      statusCode: 200,
      responseTimeMs: 3,
      response: '',
      errorClass: null,
      error: null,
      createdAt: now,
    });
    const [r1, r2] = await Promise.all([s.successes.record(success()), s.successes.record(success())]);
    expect([r1, r2].filter(Boolean)).toHaveLength(1);
    const n = await rows<{ n: string }>('select count(*) n from delivery_attempts where delivery_id = ?', [
      d!.id,
    ]);
    expect(Number(n[0]!.n)).toBe(1);
  });
});

describe('publish with one idempotency key twice in one INSERT', () => {
  it('one is stored, the other is answered as a duplicate', async () => {
    const service = new EventService(
      {
        orm,
        eventTypes: { require: async () => {} } as never,
        outbox: { publish: async () => true } as never,
      },
      { statementTimeoutMs: 30_000 },
    );
    const actor = systemActor(randomUUID());
    const input = { type: 'billing.invoice.created', current: { n: 1 }, idempotencyKey: 'k1' };
    const [a, b] = await Promise.all([service.publish(actor, input), service.publish(actor, input)]);
    expect([a.duplicate, b.duplicate].sort()).toEqual([false, true]);
    expect(a.event.id).toBe(b.event.id);
  });
});

describe('load: a webhook whose secret cannot be opened fails its own deliveries only', () => {
  it('an unrelated delivery loads while it shares a batch with the bad one', async () => {
    const s = store();
    const tenant = randomUUID();
    const [bad, good] = [randomUUID(), randomUUID()];
    const sealedElsewhere = new SecretBox(randomBytes(32)).seal('whsec_x');
    for (const [id, secret] of [
      [bad, sealedElsewhere],
      [good, box.seal('whsec_' + randomBytes(32).toString('base64'))],
    ] as const) {
      await rows(
        `insert into webhooks (id, tenant_id, url, subscribed_events, managed_by, secret, created_at, updated_at)
         values (?, ?, 'https://example.com/', '{a.b.c}', 'API', ?, now(), now())`,
        [id, tenant, secret],
      );
    }
    const [dBad] = await s.dispatches.create(event({ tenantId: tenant }), [bad]);
    const [dGood] = await s.dispatches.create(event(), [good]);
    const [lBad, lGood] = await Promise.allSettled([s.jobs.load(dBad!.id), s.jobs.load(dGood!.id)]);
    expect(lBad.status).toBe('rejected');
    expect(lGood.status).toBe('fulfilled');
  });
});

describe('batch lookups: one index probe per key', () => {
  interface PlanNode {
    'Node Type': string;
    'Relation Name'?: string;
    Plans?: PlanNode[];
  }
  const scans = (node: PlanNode): string[] => [
    ...(node['Node Type'] === 'Seq Scan' ? [node['Relation Name']!] : []),
    ...(node.Plans ?? []).flatMap(scans),
  ];
  const scannedTables = async (sql: string, params: unknown[]) => {
    const [row] = await sqlRows<{ 'QUERY PLAN': [{ Plan: PlanNode }] }>(
      orm,
      `explain (format json) ${sql}`,
      params,
    );
    return scans(row!['QUERY PLAN'][0].Plan);
  };

  it('plans neither the dispatch nor the attempt load of 300 keys as a scan of a 20,000-row table', async () => {
    await rows(
      `insert into deliveries (id, tenant_id, webhook_id, event_id, event_type, status, attempts, created_at, updated_at)
       select gen_random_uuid(), ?, gen_random_uuid(), gen_random_uuid(), 'billing.invoice.created', 'SUCCEEDED', 1, now(), now()
       from generate_series(1, 20000)`,
      [randomUUID()],
    );
    await rows('analyze deliveries');
    const keys = `{${Array.from({ length: 300 }, () => randomUUID()).join(',')}}`;
    const now = new Date();
    expect(await scannedTables(LOAD_JOBS_SQL, [keys])).not.toContain('deliveries');
    const incoming = JSON.stringify(
      Array.from({ length: 300 }, () => {
        const e = event();
        return { ...e, tenant_id: e.tenantId, idempotency_key: e.idempotencyKey, delivery_count: 1 };
      }),
    );
    expect(await scannedTables(DISPATCH_SQL, [incoming, '[]', now])).not.toContain('deliveries');
  });
});

describe('a stuck statement', () => {
  it('is cancelled past its time, fails its callers as a database outage, and holds back no later batch', async () => {
    const s = store(300);
    const holder = new pg.Client({ connectionString: inject('databaseUrl') });
    await holder.connect();
    try {
      await holder.query('begin');
      await holder.query('lock table deliveries in access exclusive mode');
      const started = performance.now();
      const stuck = await s.jobs.load(randomUUID()).then(
        () => null,
        (error: unknown) => error,
      );
      expect(stuck).toBeInstanceOf(StatementTimeoutError);
      expect(isDatabaseUnavailable(stuck)).toBe(true);
      expect(performance.now() - started).toBeLessThan(5_000);
      // PostgreSQL is told to drop the statement: its lock request goes, the holder is alone.
      await waitFor(
        async () => {
          const waiting = await holder.query<{ n: string }>(
            "select count(*) n from pg_locks where relation = 'deliveries'::regclass and not granted",
          );
          return Number(waiting.rows[0]!.n) === 0;
        },
        { timeoutMs: 5_000, what: 'the cancelled statement to let go of its lock request' },
      );
      await holder.query('commit');
      const [d] = await s.dispatches.create(event(), [randomUUID()]);
      expect(await s.jobs.load(d!.id)).toMatchObject({ delivery: { id: d!.id } });
    } finally {
      await holder.end();
    }
  });
});

describe('an event stored by another transaction while its dispatch runs', () => {
  it('is dispatched all the same: its deliveries are made for the row that won', async () => {
    const s = store();
    const e = event();
    const other = new pg.Client({ connectionString: inject('databaseUrl') });
    await other.connect();
    try {
      await other.query('begin');
      const winner = randomUUID();
      await other.query(
        `insert into events (id, tenant_id, type, module, model, action, occurred_at, idempotency_key, created_at)
         values ($1, $2, $3, 'billing', 'invoice', 'created', now(), $4, now())`,
        [winner, e.tenantId, e.type, e.idempotencyKey],
      );
      // The dispatch waits on the uncommitted row with the same key, which commits meanwhile.
      const dispatching = s.dispatches.create(e, [randomUUID()]);
      await waitFor(
        async () => {
          const { rows } = await other.query<{ n: number }>(
            "select count(*)::int n from pg_locks where locktype = 'transactionid' and not granted",
          );
          return rows[0]!.n > 0;
        },
        { what: 'the dispatch to wait for the other transaction' },
      );
      await other.query('commit');
      const [delivery] = await dispatching;
      const stored = await rows<{ event_id: string }>('select event_id from deliveries where id = ?', [
        delivery!.id,
      ]);
      expect(stored[0]!.event_id).toBe(winner);
      const marked = await rows<{ dispatched: boolean }>(
        'select dispatched_at is not null as dispatched from events where id = ?',
        [winner],
      );
      expect(marked[0]!.dispatched).toBe(true);
    } finally {
      await other.end();
    }
  });
});

describe('a page boundary between rows made at the same moment', () => {
  it('neither skips nor repeats a row: the cursor orders ties by id', async () => {
    const e = event();
    // One dispatch: every delivery of the event has the same created_at.
    const made = await store().dispatches.create(
      e,
      Array.from({ length: 5 }, () => randomUUID()),
    );
    const list = new DeliveryService({ orm, audit: null as never, eventTypes: null as never });
    const actor = systemActor(e.tenantId);
    const seen: string[] = [];
    let after: { createdAt: Date; id: string } | null = null;
    for (;;) {
      const page = await list.list(actor, {}, { first: 2, after });
      seen.push(...page.items.map((d) => d.id));
      if (!page.hasNextPage) break;
      const last = page.items.at(-1)!;
      after = { createdAt: last.createdAt, id: last.id };
    }
    expect(seen).toEqual(
      made
        .map((d) => d.id)
        .sort()
        .reverse(),
    );
  });
});
