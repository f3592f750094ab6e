import canonicalize from 'canonicalize';
import { z } from 'zod';
import { batchLoader } from '../db/batch-loader.ts';
import { newId } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import { sqlRows } from '../db/raw.ts';
import { findByIds } from '../db/by-ids.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import {
  eventTypeName,
  parseEventTypeName,
  type EventTypeService,
} from '../event-types/event-type.service.ts';
import { InvalidInputError } from '../errors.ts';
import { parse, STORABLE_DATE_RANGE, storable, storableDate, UNSTORABLE_TEXT } from '../input.ts';
import { createdWithin, findPage, type Cursor, type Page, type PageRequest } from '../pagination.ts';
import type { Actor } from '../tenancy/actor.ts';
import { annotate, currentTraceparent, inSpan } from '../tracing.ts';
import type { OutboxRelay } from '../util/outbox-relay.ts';
import { EventEntity } from './event.entity.ts';
import { IdempotencyKeyReusedError } from './event.errors.ts';
import { fromEntity, type PublishedEvent } from './published-event.ts';

/** The largest `current` + `previous` accepted, serialised: it is what every delivery carries. */
export const MAX_EVENT_PAYLOAD_BYTES = 256 * 1024;

const storableJson = z.json().nullish().refine(storable, UNSTORABLE_TEXT);

export const publishEventInput = z.object({
  type: eventTypeName,
  current: storableJson,
  previous: storableJson,
  occurredAt: z.date().refine(storableDate, STORABLE_DATE_RANGE).nullish(),
  idempotencyKey: z
    .string()
    .trim()
    .min(1)
    .max(255)
    .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters')
    .refine((key) => key.isWellFormed(), 'must not contain unpaired surrogates')
    .nullish(),
});
/** What callers hand in; `current` and `previous` are checked to be JSON by the schema. */
export type PublishEventInput = Omit<z.input<typeof publishEventInput>, 'current' | 'previous'> & {
  current?: unknown;
  previous?: unknown;
};

export interface PublishResult {
  event: PublishedEvent;
  /** True when the idempotency key was seen before: the earlier event is returned, nothing is published. */
  duplicate: boolean;
}

export class EventService {
  private readonly orm: Orm;
  private readonly eventTypes: EventTypeService;
  private readonly outbox: Pick<OutboxRelay<PublishedEvent>, 'publish'>;
  /** Batched inserts are cancelled past this (config database.statementTimeoutMs). */
  private readonly timeout: { timeoutMs: number };

  /** Concurrent publishes share one INSERT; false for an event whose idempotency key was taken. */
  private readonly inserts = batchLoader<PublishedEvent, boolean>((events) => this.insertBatch(events), {
    maxBatchSize: 500,
    concurrency: 2,
  });

  constructor(
    deps: { orm: Orm; eventTypes: EventTypeService; outbox: Pick<OutboxRelay<PublishedEvent>, 'publish'> },
    options: { statementTimeoutMs: number },
  ) {
    this.orm = deps.orm;
    this.timeout = { timeoutMs: options.statementTimeoutMs };
    this.eventTypes = deps.eventTypes;
    this.outbox = deps.outbox;
  }

  /**
   * Stores the event with its outbox entry, then publishes it. Once this returns the event is
   * accepted: if the bus is down the outbox relay publishes it later. A trace starts here, and
   * follows the event to its deliveries.
   */
  publish(actor: Actor, raw: PublishEventInput): Promise<PublishResult> {
    return inSpan('publishEvent', { root: true }, () => this.publishTraced(actor, raw));
  }

  private async publishTraced(actor: Actor, raw: PublishEventInput): Promise<PublishResult> {
    const input = parse(publishEventInput, raw);
    const payloadBytes = Buffer.byteLength(JSON.stringify([input.current ?? null, input.previous ?? null]));
    if (payloadBytes > MAX_EVENT_PAYLOAD_BYTES) {
      throw new InvalidInputError([
        {
          path: ['input', 'current'],
          message: `current and previous exceed ${MAX_EVENT_PAYLOAD_BYTES} bytes`,
        },
      ]);
    }
    await this.eventTypes.require(input.type, ['input', 'type'], input.current);

    const id = newId();
    const meta = parseEventTypeName(input.type);
    const published: PublishedEvent = {
      id,
      tenantId: actor.tenantId,
      type: input.type,
      meta,
      current: input.current ?? null,
      previous: input.previous ?? null,
      occurredAt: input.occurredAt ?? new Date(),
      idempotencyKey: input.idempotencyKey ?? id,
      traceparent: currentTraceparent(),
    };
    annotate({ 'herald.event.id': id, 'herald.event.type': input.type, 'herald.tenant.id': actor.tenantId });
    const stored = await this.inserts.load(published);
    if (!stored) {
      annotate({ 'herald.duplicate': true });
      return { event: await this.replay(actor, published.idempotencyKey, input), duplicate: true };
    }
    await this.outbox.publish([published]);
    return { event: published, duplicate: false };
  }

  private async insertBatch(events: readonly PublishedEvent[]): Promise<boolean[]> {
    const now = new Date();
    const inserted = await sqlRows<{ id: string }>(
      this.orm,
      `with inserted as (
         insert into events (id, tenant_id, type, module, model, action, current, previous, occurred_at, idempotency_key, traceparent, created_at)
         select x.id, x.tenant_id, x.type, x.module, x.model, x.action, x.current, x.previous, x.occurred_at, x.idempotency_key, x.traceparent, $1::timestamptz
         from jsonb_to_recordset($2::jsonb) as x(id uuid, tenant_id uuid, type varchar, module varchar, model varchar, action varchar, current jsonb, previous jsonb, occurred_at timestamptz, idempotency_key varchar, traceparent varchar)
         on conflict (tenant_id, idempotency_key) do nothing
         returning id
       ), queued as (
         insert into event_outbox (event_id) select id from inserted
       )
       select id from inserted`,
      [
        now,
        JSON.stringify(
          events.map((event) => ({
            id: event.id,
            tenant_id: event.tenantId,
            type: event.type,
            ...event.meta,
            current: event.current,
            previous: event.previous,
            occurred_at: event.occurredAt,
            idempotency_key: event.idempotencyKey,
            traceparent: event.traceparent,
          })),
        ),
      ],
      this.timeout,
    );
    const stored = new Set(inserted.map((row) => row.id));
    return events.map((event) => stored.has(event.id));
  }

  /** The tenant's events, newest first, optionally of some types and received within [from, to). */
  async list(
    actor: Actor,
    filter: { types?: readonly string[] | null; from?: Date | null; to?: Date | null },
    page: PageRequest,
  ): Promise<Page<PublishedEvent & Cursor>> {
    const types = [...new Set(filter.types ?? [])];
    const found = await findPage(tenantEm(this.orm, actor), EventEntity, page, (query) =>
      query.$if(types.length > 0, (q) => q.where('type', 'in', types)).$call(createdWithin(filter)),
    );
    return {
      items: found.items.map((row) => ({ ...fromEntity(row), createdAt: row.createdAt })),
      hasNextPage: found.hasNextPage,
    };
  }

  /** Events of the actor's tenant by id, in the order asked; null for unknown ids and other tenants' events. */
  async getMany(actor: Actor, ids: readonly string[]): Promise<(PublishedEvent | null)[]> {
    const rows = await findByIds(tenantEm(this.orm, actor), EventEntity, ids);
    return rows.map((row) => row && fromEntity(row));
  }

  private async replay(
    actor: Actor,
    idempotencyKey: string,
    input: z.output<typeof publishEventInput>,
  ): Promise<PublishedEvent> {
    const existing = await tenantEm(this.orm, actor).findOneOrFail(EventEntity, { idempotencyKey });
    const same =
      existing.type === input.type &&
      canonicalize(existing.current ?? null) === canonicalize(input.current ?? null) &&
      canonicalize(existing.previous ?? null) === canonicalize(input.previous ?? null);
    if (!same) throw new IdempotencyKeyReusedError(idempotencyKey);
    return fromEntity(existing);
  }
}
