import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';

/**
 * What became of a request. Accepted (answered 2xx, body kept): ROUTED into an event, RECORDED by a
 * DRAFT source, UNROUTABLE (kept, but it could not become an event: see `reason`), FILTERED out by
 * its flow's filter, DUPLICATE of an earlier delivery. Refused, with their answer's status: the rest.
 */
export const inboundOutcomes = [
  'ROUTED',
  'RECORDED',
  'UNROUTABLE',
  'FILTERED',
  'DUPLICATE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'METHOD_NOT_ALLOWED',
  'TOO_LARGE',
  'UNSUPPORTED_MEDIA_TYPE',
  'RATE_LIMITED',
] as const;
export type InboundOutcome = (typeof inboundOutcomes)[number];

export const verificationStatuses = ['VERIFIED', 'FAILED', 'NOT_CHECKED'] as const;
export type VerificationStatus = (typeof verificationStatuses)[number];

export const parseStatuses = ['PARSED', 'FAILED', 'NOT_PARSED'] as const;
export type ParseStatus = (typeof parseStatuses)[number];

/**
 * One request to a source's URL, accepted or refused (the inbound log, where integrators debug).
 * The body is the exact bytes received; refused requests keep it too, except those too large or
 * over the rate. The parsed copy is not stored: it is derived again from the bytes when read.
 */
export const InboundRequestEntity = defineEntity({
  name: 'InboundRequest',
  tableName: 'inbound_requests',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    sourceId: p.uuid(),
    method: p.string().length(16),
    path: p.string().length(2048),
    query: p.string().length(2048).nullable(),
    /** As received, lower-case names, with credentials (Authorization, the API key…) redacted. */
    headers: p.json<Record<string, string | string[]>>(),
    contentType: p.string().length(255).nullable(),
    clientIp: p.string().length(64).nullable(),
    body: p.blob().nullable().lazy(),
    /** The size received (or announced, for a body refused unread as too large). */
    bodyBytes: p.integer(),
    bodySha256: p.string().length(64).nullable(),
    outcome: p.string().length(24).$type<InboundOutcome>(),
    statusCode: p.integer(),
    reason: p.string().length(1000).nullable(),
    verification: p.string().length(16).$type<VerificationStatus>(),
    verificationDetail: p.string().length(1000).nullable(),
    parseStatus: p.string().length(16).$type<ParseStatus>(),
    parseError: p.string().length(1000).nullable(),
    /** The provider's delivery id, as read by the source's idempotency selector. */
    idempotencyKey: p.string().length(255).nullable(),
    /**
     * The delivery id on the one request that holds it for the source (unique with sourceId), so
     * a concurrent duplicate cannot slip through; null on duplicates, refusals and replays.
     */
    dedupeKey: p.string().length(255).nullable(),
    duplicateOf: p.uuid().nullable(),
    /** A replay's original request. */
    replayOf: p.uuid().nullable(),
    eventId: p.uuid().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  uniques: [{ properties: ['sourceId', 'dedupeKey'], name: 'inbound_requests_source_dedupe_key_unique' }],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'inbound_requests_tenant_created_at_id_index' },
    {
      properties: ['tenantId', 'sourceId', 'createdAt', 'id'],
      name: 'inbound_requests_tenant_source_index',
    },
  ],
});
export type InboundRequest = InferEntity<typeof InboundRequestEntity>;

/** Requests stored and not yet announced to live tails, written in the request's transaction. */
export const InboundOutboxEntity = defineEntity({
  name: 'InboundOutbox',
  tableName: 'inbound_outbox',
  properties: {
    requestId: p.uuid().primary(),
  },
});
