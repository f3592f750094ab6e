import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { newId } from '../db/ids.ts';
import { tenantFilter } from '../db/tenant-filter.ts';
import type { InboundFormat } from './body.ts';
import type { Verification } from './verification.ts';

export const inboundSourceStatuses = ['DRAFT', 'INACTIVE', 'DEPLOYED'] as const;
export type InboundSourceStatus = (typeof inboundSourceStatuses)[number];

/** Where a request's event type comes from: one fixed type, or a body path or header holding it. */
export type EventTypeSelector = { fixed: string } | { bodyPath: string } | { header: string };

/** Where a request's delivery id comes from, for idempotency; null in the column: the preset's own. */
export type IdempotencySelector = { header: string } | { bodyPath: string } | { none: true };

/** A live verification secret, sealed; one without expiry is the current one. */
export interface SealedSecret {
  sealed: string;
  createdAt: string;
  /** Set when a newer secret replaced it: it keeps verifying until then (rotation with grace). */
  expiresAt: string | null;
}

/**
 * A receiver of a third party's webhooks for a tenant: `POST /in/<token>`. The token is kept as a
 * SHA-256 for the lookup and sealed for showing the URL, so a database read alone cannot post.
 */
export const InboundSourceEntity = defineEntity({
  name: 'InboundSource',
  tableName: 'inbound_sources',
  filters: tenantFilter,
  properties: {
    id: p
      .uuid()
      .primary()
      .onCreate(() => newId()),
    tenantId: p.uuid(),
    name: p.string().length(255),
    description: p.string().length(1000).nullable(),
    status: p.string().length(16).$type<InboundSourceStatus>(),
    format: p.string().length(8).$type<InboundFormat>(),
    sampleBody: p.text().nullable(),
    verification: p.json<Verification>(),
    /** Sealed with the secret key; never returned. */
    secrets: p.json<SealedSecret[]>().lazy(),
    /** Null for a flow's webhook: its flow's route decides. */
    eventType: p.json<EventTypeSelector>().nullable(),
    /** The flow it is a webhook of; null for a source of its own. */
    flowId: p.uuid().nullable(),
    idempotency: p.json<IdempotencySelector>().nullable(),
    maxBytes: p.integer(),
    allowedMethods: p.array(),
    /** Networks senders may post from; empty: any. */
    allowedCidrs: p.array(),
    /** Requests a second accepted before 429; null: the configured default. */
    requestsPerSecond: p.integer().nullable(),
    urlTokenHash: p.string().length(64),
    urlToken: p.text(),
    /** The token before the last rotation: it keeps working until previousUrlTokenExpiresAt. */
    previousUrlTokenHash: p.string().length(64).nullable(),
    previousUrlTokenExpiresAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  uniques: [{ properties: ['urlTokenHash'], name: 'inbound_sources_url_token_hash_unique' }],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'inbound_sources_tenant_created_at_id_index' },
    {
      name: 'inbound_sources_flow_index',
      expression:
        'create index "inbound_sources_flow_index" on "inbound_sources" ("flow_id", "created_at", "id") where "flow_id" is not null',
    },
    {
      name: 'inbound_sources_previous_url_token_index',
      expression:
        'create index "inbound_sources_previous_url_token_index" on "inbound_sources" ("previous_url_token_hash") where "previous_url_token_hash" is not null',
    },
  ],
});
export type InboundSource = InferEntity<typeof InboundSourceEntity>;
