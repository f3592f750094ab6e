import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { newId } from '../db/ids.ts';
import { InvalidInputError } from '../errors.ts';
import {
  eventTypeName,
  parseEventTypeName,
  type EventTypeService,
} from '../event-types/event-type.service.ts';
import { MAX_EVENT_PAYLOAD_BYTES } from '../events/event.service.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import { parseBody, valueAt } from './body.ts';
import type { InboundOutcome, ParseStatus, VerificationStatus } from './inbound-request.entity.ts';
import type { InboundSource } from './inbound-source.entity.ts';
import { presetIdempotency, verify } from './verification.ts';

/** What Herald makes of a request that reached its source: verified or not, parsed, routed. */
export interface Judgement {
  /** UNAUTHORIZED, or what an accepted request becomes (DUPLICATE is found when it is stored). */
  outcome: Extract<InboundOutcome, 'UNAUTHORIZED' | 'ROUTED' | 'RECORDED' | 'UNROUTABLE'>;
  reason: string | null;
  verification: { status: VerificationStatus; detail: string | null };
  parse: { status: ParseStatus; error: string | null; value?: unknown };
  idempotencyKey: string | null;
  /** The delivery id the request holds at its source; null when not deduplicated. */
  dedupeKey: string | null;
  /** The event it becomes (tenant and idempotency key set when stored); null unless ROUTED. */
  event: Omit<PublishedEvent, 'tenantId' | 'idempotencyKey'> | null;
}

export interface JudgedRequest {
  headers: IncomingHttpHeaders | Readonly<Record<string, string | string[]>>;
  body: Buffer;
  receivedAt: Date;
}

/**
 * Verifies (unless told not to: a replay trusting its first verification), parses, and decides
 * what the request becomes. Never throws on the request's content: a body that does not parse or
 * names no known event type is kept as UNROUTABLE with the reason.
 */
export async function judge(
  deps: { eventTypes: EventTypeService },
  target: { source: InboundSource; secrets: { secret: string; expiresAt: number | null }[] },
  request: JudgedRequest,
  options: { verify: boolean; dedupe: boolean },
): Promise<Judgement> {
  const { source } = target;
  let verification: Judgement['verification'] = { status: 'NOT_CHECKED', detail: null };
  if (options.verify) {
    const now = request.receivedAt.getTime();
    const secrets = target.secrets
      .filter((s) => s.expiresAt === null || s.expiresAt > now)
      .map((s) => s.secret);
    const result = verify(source.verification, secrets, request);
    verification = result.verified
      ? { status: 'VERIFIED', detail: result.detail }
      : { status: 'FAILED', detail: result.reason };
    if (!result.verified) {
      return {
        outcome: 'UNAUTHORIZED',
        reason: result.reason,
        verification,
        parse: { status: 'NOT_PARSED', error: null },
        idempotencyKey: null,
        dedupeKey: null,
        event: null,
      };
    }
  }
  const parsed = parseBody(source.format, request.body, first(request.headers['content-type']));
  const parse: Judgement['parse'] =
    parsed.status === 'PARSED'
      ? { status: 'PARSED', error: null, value: parsed.value }
      : { status: 'FAILED', error: parsed.error };
  const idempotencyKey = deliveryId(source, request.headers, parse.value);
  const accepted = { verification, parse, idempotencyKey, event: null };
  if (source.status !== 'DEPLOYED') {
    return {
      ...accepted,
      outcome: 'RECORDED',
      reason: `the source is ${source.status}: recorded, not routed`,
      dedupeKey: null,
    };
  }
  const dedupeKey = options.dedupe ? idempotencyKey : null;
  if (parse.status !== 'PARSED') {
    return {
      ...accepted,
      outcome: 'UNROUTABLE',
      reason: `the body did not parse: ${parse.error}`,
      dedupeKey,
    };
  }
  const routed = await route(deps.eventTypes, source, request, parse.value);
  if ('unroutable' in routed)
    return { ...accepted, outcome: 'UNROUTABLE', reason: routed.unroutable, dedupeKey };
  return { ...accepted, outcome: 'ROUTED', reason: null, dedupeKey, event: routed.event };
}

async function route(
  eventTypes: EventTypeService,
  source: InboundSource,
  request: JudgedRequest,
  current: unknown,
): Promise<{ event: NonNullable<Judgement['event']> } | { unroutable: string }> {
  const selector = source.eventType;
  const named =
    'fixed' in selector
      ? selector.fixed
      : 'bodyPath' in selector
        ? valueAt(current, selector.bodyPath)
        : first(request.headers[selector.header]);
  const from =
    'fixed' in selector
      ? 'the source'
      : 'bodyPath' in selector
        ? `body path ${selector.bodyPath}`
        : `header ${selector.header}`;
  if (typeof named !== 'string') return { unroutable: `no event type at ${from}` };
  if (!eventTypeName.safeParse(named).success) {
    return {
      unroutable: `"${named.slice(0, 100)}" at ${from} is not an event type name ([module.]model.action)`,
    };
  }
  if (Buffer.byteLength(JSON.stringify(current)) > MAX_EVENT_PAYLOAD_BYTES) {
    return { unroutable: `the parsed body is over the ${MAX_EVENT_PAYLOAD_BYTES} bytes an event may carry` };
  }
  try {
    await eventTypes.require(named, ['eventType'], current);
  } catch (error) {
    if (error instanceof InvalidInputError)
      return { unroutable: error.problems.map((p) => p.message).join('; ') };
    throw error;
  }
  return {
    event: {
      id: newId(),
      type: named,
      meta: parseEventTypeName(named),
      current,
      previous: null,
      occurredAt: request.receivedAt,
    },
  };
}

/** The provider's delivery id, by the source's selector or its preset's; null when it has none. */
function deliveryId(
  source: InboundSource,
  headers: JudgedRequest['headers'],
  parsed: unknown,
): string | null {
  const selector = source.idempotency ?? presetIdempotency(source.verification);
  if (!selector || 'none' in selector) return null;
  const value = 'header' in selector ? first(headers[selector.header]) : valueAt(parsed, selector.bodyPath);
  const key = typeof value === 'number' ? String(value) : typeof value === 'string' ? value.trim() : null;
  if (!key) return null;
  // A long or unprintable id still deduplicates, by its digest.
  return key.length <= 255 && /^[^\p{Cc}\p{Cs}]+$/u.test(key)
    ? key
    : `sha256:${createHash('sha256').update(key).digest('hex')}`;
}

const first = (value: string | string[] | undefined): string | undefined =>
  Array.isArray(value) ? value[0] : value;
