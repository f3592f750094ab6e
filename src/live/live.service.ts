import { z } from 'zod';
import type { LiveMessage } from '../bus/bus.ts';
import {
  attemptMessageV1,
  auditMessageV1,
  decode,
  eventMessageV1,
  inboundRequestMessageV1,
  subjects,
} from '../bus/contracts.ts';
import type {
  InboundOutcome,
  InboundRequest,
  ParseStatus,
  VerificationStatus,
} from '../inbound/inbound-request.entity.ts';
import type { AuditLog } from '../audit/audit-log.entity.ts';
import type { DeliveryAttempt, DeliveryStatus } from '../deliveries/delivery.entity.ts';
import { eventTypeName } from '../event-types/event-type.service.ts';
import { InvalidInputError, TooManySubscriptionsError } from '../errors.ts';
import { fromMessage, type PublishedEvent } from '../events/published-event.ts';
import type { Actor } from '../tenancy/actor.ts';
import type { LiveCursors, LiveKind, Streamed } from './cursor.ts';
import type { LiveHub, LiveStream } from './live-hub.ts';

export type LiveAttempt = DeliveryAttempt & Streamed;

/** An inbound request as live tails get it: without its body (read it by id). */
export type LiveInboundRequest = Omit<InboundRequest, 'body'> & Streamed;

/**
 * The live streams of a tenant. Each subscription is one subject of the caller's tenant:
 * isolation is the subject, never a check after the fact.
 */
export class LiveService {
  private readonly hub: LiveHub;
  private readonly cursors: LiveCursors;
  private readonly subjects: ReturnType<typeof subjects>;

  private readonly maxPerToken: number;
  /** Open subscriptions by token (the operator's under "operator"). */
  private readonly held = new Map<string, number>();

  constructor(
    deps: { hub: LiveHub; cursors: LiveCursors },
    options: { prefix: string; maxPerToken: number },
  ) {
    this.hub = deps.hub;
    this.cursors = deps.cursors;
    this.subjects = subjects(options.prefix);
    this.maxPerToken = options.maxPerToken;
  }

  /** Published events; of one type by subject, of several by subject and then by type. */
  async events(
    actor: Actor,
    options: { types?: readonly string[] | null; after?: string | null },
  ): Promise<LiveStream<PublishedEvent & Streamed>> {
    const types = [...new Set(options.types ?? [])];
    const bad = types.filter((t) => !eventTypeName.safeParse(t).success);
    if (bad.length > 0) {
      throw new InvalidInputError([{ path: ['types'], message: `not event type names: ${bad.join(', ')}` }]);
    }
    const wanted = new Set(types);
    return this.open('events', actor, {
      subject:
        types.length === 1
          ? this.subjects.event(actor.tenantId, types[0]!)
          : this.subjects.eventsOfTenant(actor.tenantId),
      decode: (m) => ({
        ...fromMessage(decode(eventMessageV1, m.data)),
        streamCursor: this.cursors.encode('events', actor.tenantId, m.seq),
      }),
      accept: wanted.size > 1 ? (event) => wanted.has(event.type) : undefined,
      after: options.after,
    });
  }

  /** Delivery attempts as workers record them: of one webhook by subject, optionally by status. */
  async attempts(
    actor: Actor,
    options: {
      webhookId?: string | null;
      statuses?: readonly DeliveryStatus[] | null;
      after?: string | null;
    },
  ): Promise<LiveStream<LiveAttempt>> {
    if (options.webhookId != null && !z.uuid().safeParse(options.webhookId).success) {
      throw new InvalidInputError([{ path: ['webhookId'], message: 'not a webhook id' }]);
    }
    const statuses = new Set(options.statuses ?? []);
    return this.open('attempts', actor, {
      subject: options.webhookId
        ? this.subjects.attempt(actor.tenantId, options.webhookId)
        : this.subjects.attemptsOfTenant(actor.tenantId),
      decode: (m) => {
        const { v: _v, ...attempt } = decode(attemptMessageV1, m.data);
        return {
          ...attempt,
          createdAt: new Date(attempt.createdAt),
          streamCursor: this.cursors.encode('attempts', actor.tenantId, m.seq),
        };
      },
      accept: statuses.size > 0 ? (attempt) => statuses.has(attempt.status) : undefined,
      after: options.after,
    });
  }

  /** Audit entries of the tenant as they are committed. */
  async audit(actor: Actor, options: { after?: string | null }): Promise<LiveStream<AuditLog & Streamed>> {
    return this.open('audit', actor, {
      subject: this.subjects.audit(actor.tenantId),
      decode: (m) => {
        const { v: _v, ...entry } = decode(auditMessageV1, m.data);
        return {
          ...entry,
          createdAt: new Date(entry.createdAt),
          streamCursor: this.cursors.encode('audit', actor.tenantId, m.seq),
        };
      },
      after: options.after,
    });
  }

  /** Requests to the tenant's inbound sources as they are stored; of one source by subject. */
  async inbound(
    actor: Actor,
    options: { sourceId?: string | null; after?: string | null },
  ): Promise<LiveStream<LiveInboundRequest>> {
    if (options.sourceId != null && !z.uuid().safeParse(options.sourceId).success) {
      throw new InvalidInputError([{ path: ['sourceId'], message: 'not an inbound source id' }]);
    }
    return this.open('inbound', actor, {
      subject: options.sourceId
        ? this.subjects.inbound(actor.tenantId, options.sourceId)
        : this.subjects.inboundOfTenant(actor.tenantId),
      decode: (m) => {
        const { v: _v, ...request } = decode(inboundRequestMessageV1, m.data);
        return {
          ...request,
          outcome: request.outcome as InboundOutcome,
          verification: request.verification as VerificationStatus,
          parseStatus: request.parseStatus as ParseStatus,
          dedupeKey: null,
          createdAt: new Date(request.createdAt),
          streamCursor: this.cursors.encode('inbound', actor.tenantId, m.seq),
        };
      },
      after: options.after,
    });
  }

  /** Bus subscriptions and live subscribers in this process. */
  stats(): { feeds: number; subscribers: number } {
    return this.hub.stats();
  }

  /** Ends every live subscription (at shutdown): SSE responses and sockets finish cleanly. */
  endAll(): void {
    this.hub.close();
  }

  private async open<T>(
    kind: LiveKind,
    actor: Actor,
    request: {
      subject: string;
      decode: (message: LiveMessage) => T & Streamed;
      accept?: (value: T & Streamed) => boolean;
      after: string | null | undefined;
    },
  ): Promise<LiveStream<T & Streamed>> {
    const after = request.after == null ? null : this.cursors.decode(kind, actor.tenantId, request.after);
    const holder = actor.tokenId ?? actor.kind;
    const held = this.held.get(holder) ?? 0;
    if (held >= this.maxPerToken) {
      throw new TooManySubscriptionsError(
        `this token holds ${held} live subscriptions, the most it may (HERALD_LIVE_MAX_PER_TOKEN): end one first`,
      );
    }
    this.held.set(holder, held + 1);
    const onClose = () => {
      const left = (this.held.get(holder) ?? 1) - 1;
      if (left > 0) this.held.set(holder, left);
      else this.held.delete(holder);
    };
    return this.hub.open({ ...request, after, onClose });
  }
}
