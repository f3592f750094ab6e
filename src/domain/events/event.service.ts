import { UniqueConstraintViolationException } from '@mikro-orm/core';
import { Repeater } from '@repeaterjs/repeater';
import canonicalize from 'canonicalize';
import { z } from 'zod';
import type { EventBus } from '../../bus/bus.ts';
import { decode, eventMessageV1, subjects } from '../../bus/contracts.ts';
import { newId } from '../../db/ids.ts';
import type { Orm } from '../../db/orm.ts';
import { tenantEm } from '../../db/tenant-scope.ts';
import type { Logger } from '../../logger.ts';
import {
  eventTypeName,
  parseEventTypeName,
  type EventTypeService,
} from '../event-types/event-type.service.ts';
import { InvalidInputError } from '../errors.ts';
import { parse } from '../input.ts';
import type { Actor } from '../tenancy/actor.ts';
import type { EventOutbox } from './event-outbox.ts';
import { EventEntity } from './event.entity.ts';
import { IdempotencyKeyReusedError } from './event.errors.ts';
import { fromEntity, fromMessage, type PublishedEvent } from './published-event.ts';

/** The largest `current` + `previous` accepted, serialised: it is what every delivery carries. */
export const MAX_EVENT_PAYLOAD_BYTES = 256 * 1024;

export const publishEventInput = z.object({
  type: eventTypeName,
  current: z.json().nullish(),
  previous: z.json().nullish(),
  occurredAt: z.date().nullish(),
  idempotencyKey: z
    .string()
    .trim()
    .min(1)
    .max(255)
    .regex(/^[^\p{Cc}]+$/u, 'must not contain control characters')
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

/** How many live events may wait for a slow subscriber before it is cut off. */
const LIVE_BUFFER = 1_000;

export class EventService {
  private readonly orm: Orm;
  private readonly bus: EventBus;
  private readonly eventTypes: EventTypeService;
  private readonly outbox: EventOutbox;
  private readonly subjects: ReturnType<typeof subjects>;
  private readonly logger: Logger;
  private readonly live = new Set<() => void>();

  constructor(
    deps: { orm: Orm; bus: EventBus; eventTypes: EventTypeService; outbox: EventOutbox; logger: Logger },
    options: { prefix: string },
  ) {
    this.orm = deps.orm;
    this.bus = deps.bus;
    this.eventTypes = deps.eventTypes;
    this.outbox = deps.outbox;
    this.logger = deps.logger;
    this.subjects = subjects(options.prefix);
  }

  /**
   * Stores the event (the row is also the outbox entry), then publishes it. Once this returns the
   * event is accepted: if the bus is down the outbox relay publishes it later.
   */
  async publish(actor: Actor, raw: PublishEventInput): Promise<PublishResult> {
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
    const idempotencyKey = input.idempotencyKey ?? id;
    const em = tenantEm(this.orm, actor);
    const event = em.create(EventEntity, {
      id,
      tenantId: actor.tenantId,
      type: input.type,
      ...parseEventTypeName(input.type),
      current: input.current ?? null,
      previous: input.previous ?? null,
      occurredAt: input.occurredAt ?? new Date(),
      idempotencyKey,
    });
    try {
      await em.flush();
    } catch (error) {
      if (!(error instanceof UniqueConstraintViolationException)) throw error;
      return { event: await this.replay(actor, idempotencyKey, input), duplicate: true };
    }
    const published = fromEntity(event);
    await this.outbox.publish(published);
    return { event: published, duplicate: false };
  }

  /** Events of the actor's tenant by id, in the order asked; null for unknown ids and other tenants' events. */
  async getMany(actor: Actor, ids: readonly string[]): Promise<(PublishedEvent | null)[]> {
    const valid = ids.filter((id) => z.uuid().safeParse(id).success);
    const rows = valid.length
      ? await tenantEm(this.orm, actor).find(EventEntity, { id: { $in: valid } })
      : [];
    const byId = new Map(rows.map((row) => [row.id, fromEntity(row)]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /**
   * Live events of the actor's tenant, optionally of some types only. Filtering is by subject, so a
   * subscriber never receives another tenant's messages to discard.
   */
  watch(actor: Actor, types: readonly string[] | null | undefined): AsyncIterable<PublishedEvent> {
    const bad = (types ?? []).filter((t) => !eventTypeName.safeParse(t).success);
    if (bad.length > 0) {
      throw new InvalidInputError([{ path: ['types'], message: `not event type names: ${bad.join(', ')}` }]);
    }
    const filters = types?.length
      ? [...new Set(types)].map((t) => this.subjects.event(actor.tenantId, t))
      : [this.subjects.eventsOfTenant(actor.tenantId)];
    return new Repeater<PublishedEvent>(async (push, stop) => {
      this.live.add(stop);
      let buffered = 0;
      const subscriptions = filters.map((filter) =>
        this.bus.subscribe(filter, (message) => {
          if (++buffered > LIVE_BUFFER) {
            stop(new Error('subscriber too slow: more than 1000 events waiting'));
            return;
          }
          try {
            void push(fromMessage(decode(eventMessageV1, message.data))).then(() => buffered--);
          } catch (error) {
            buffered--;
            this.logger.error(
              { err: error, subject: message.subject },
              'dropped an event message that breaks its contract',
            );
          }
        }),
      );
      await stop;
      this.live.delete(stop);
      for (const subscription of subscriptions) subscription.unsubscribe();
    });
  }

  /** Ends every live subscription (at shutdown): SSE responses and sockets finish cleanly. */
  endLive(): void {
    for (const stop of this.live) stop();
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
