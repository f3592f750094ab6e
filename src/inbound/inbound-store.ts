import type { Orm } from '../db/orm.ts';
import { sqlRows } from '../db/raw.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import type { InboundRequest } from './inbound-request.entity.ts';

/** A request as it is written: every column, the body as received (null when not kept). */
export type InboundRequestRow = Omit<InboundRequest, 'body'> & { body: Buffer | null };

const COLUMNS = [
  'id',
  'tenant_id',
  'source_id',
  'method',
  'path',
  'query',
  'headers',
  'content_type',
  'client_ip',
  'body',
  'body_bytes',
  'body_sha256',
  'outcome',
  'status_code',
  'reason',
  'verification',
  'verification_detail',
  'parse_status',
  'parse_error',
  'idempotency_key',
  'dedupe_key',
  'duplicate_of',
  'replay_of',
  'event_id',
  'created_at',
] as const;

const values = (row: InboundRequestRow): unknown[] => [
  row.id,
  row.tenantId,
  row.sourceId,
  row.method,
  row.path,
  row.query ?? null,
  JSON.stringify(row.headers),
  row.contentType ?? null,
  row.clientIp ?? null,
  row.body,
  row.bodyBytes,
  row.bodySha256 ?? null,
  row.outcome,
  row.statusCode,
  row.reason ?? null,
  row.verification,
  row.verificationDetail ?? null,
  row.parseStatus,
  row.parseError ?? null,
  row.idempotencyKey ?? null,
  row.dedupeKey ?? null,
  row.duplicateOf ?? null,
  row.replayOf ?? null,
  row.eventId ?? null,
  row.createdAt,
];

const placeholders = COLUMNS.map((column, i) => (column === 'headers' ? `$${i + 1}::jsonb` : `$${i + 1}`));
const param = (column: (typeof COLUMNS)[number]) => placeholders[COLUMNS.indexOf(column)]!;

/**
 * The request, its announcement and, when it routes, its event with the event's outbox entry: one
 * statement, so the 2xx a sender gets means all of it is stored. A request holding a delivery id
 * the source has seen inserts nothing (the unique index decides, so two concurrent copies cannot
 * both pass): `stored` is false and the caller records it as a duplicate.
 */
export async function insertAccepted(
  orm: Orm,
  row: InboundRequestRow,
  event: PublishedEvent | null,
  timeoutMs: number,
): Promise<boolean> {
  const params = values(row);
  const eventParams = event
    ? [
        event.id,
        event.type,
        event.meta.module,
        event.meta.model,
        event.meta.action,
        JSON.stringify(event.current),
        event.occurredAt,
        event.idempotencyKey,
        event.traceparent ?? null,
      ]
    : [];
  const n = params.length;
  const routed = event
    ? `, e as (
         insert into events (id, tenant_id, type, module, model, action, current, previous, occurred_at, idempotency_key, traceparent, created_at)
         select $${n + 1}::uuid, ${param('tenant_id')}::uuid, $${n + 2}, $${n + 3}, $${n + 4}, $${n + 5}, $${n + 6}::jsonb, null, $${n + 7}::timestamptz, $${n + 8}, $${n + 9}, ${param('created_at')}::timestamptz
         from r
         returning id
       ), eo as (insert into event_outbox (event_id) select id from e)`
    : '';
  const inserted = await sqlRows<{ id: string }>(
    orm,
    `with r as (
       insert into inbound_requests (${COLUMNS.join(', ')}) values (${placeholders.join(', ')})
       on conflict (source_id, dedupe_key) do nothing
       returning id
     )${routed}, io as (insert into inbound_outbox (request_id) select id from r)
     select id from r`,
    [...params, ...eventParams],
    { timeoutMs },
  );
  return inserted.length > 0;
}

/**
 * A duplicate of the request holding `dedupeKey` at the source, pointing at it and at the event it
 * became. Returns the row as stored.
 */
export async function insertDuplicate(
  orm: Orm,
  row: InboundRequestRow,
  dedupeKey: string,
  timeoutMs: number,
): Promise<InboundRequestRow> {
  const params = values({ ...row, dedupeKey: null, duplicateOf: null, eventId: null });
  const n = params.length;
  const [original] = await sqlRows<{ duplicate_of: string | null; event_id: string | null }>(
    orm,
    `with o as (
       select id, event_id from inbound_requests where source_id = ${param('source_id')}::uuid and dedupe_key = $${n + 1}
     ), r as (
       insert into inbound_requests (${COLUMNS.join(', ')})
       values (${placeholders
         .map((p, i) =>
           COLUMNS[i] === 'duplicate_of'
             ? `coalesce((select id from o), ${p}::uuid)`
             : COLUMNS[i] === 'event_id'
               ? `coalesce((select event_id from o), ${p}::uuid)`
               : p,
         )
         .join(', ')})
       returning id, duplicate_of, event_id
     ), io as (insert into inbound_outbox (request_id) select id from r)
     select duplicate_of, event_id from r`,
    [...params, dedupeKey],
    { timeoutMs },
  );
  return {
    ...row,
    dedupeKey: null,
    duplicateOf: original?.duplicate_of ?? null,
    eventId: original?.event_id ?? null,
  };
}

/** A request that is not routed (refused, or recorded by a DRAFT source) and its announcement. */
export async function insertRequest(orm: Orm, row: InboundRequestRow, timeoutMs: number): Promise<void> {
  await sqlRows(
    orm,
    `with r as (
       insert into inbound_requests (${COLUMNS.join(', ')}) values (${placeholders.join(', ')}) returning id
     ) insert into inbound_outbox (request_id) select id from r`,
    values(row),
    { timeoutMs },
  );
}
