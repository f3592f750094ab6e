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
import type { Flow } from './flow.entity.ts';
import { evaluate, eventTypeOf, mapCurrent, mapMeta } from './flow-route.ts';
import type { InboundSource, InboundSourceStatus } from './inbound-source.entity.ts';
import { presetIdempotency, verify } from './verification.ts';

/** What Herald makes of a request that reached its source: verified or not, parsed, routed. */
export interface Judgement {
  /** UNAUTHORIZED, or what an accepted request becomes (DUPLICATE is found when it is stored). */
  outcome: Extract<InboundOutcome, 'UNAUTHORIZED' | 'ROUTED' | 'RECORDED' | 'UNROUTABLE' | 'FILTERED'>;
  reason: string | null;
  verification: { status: VerificationStatus; detail: string | null };
  parse: { status: ParseStatus; error: string | null; value?: unknown };
  idempotencyKey: string | null;
  /** The delivery id the request holds at its source; null when not deduplicated. */
  dedupeKey: string | null;
  /** The event it becomes (tenant and idempotency key set when stored); null unless ROUTED. */
  event: Omit<PublishedEvent, 'tenantId' | 'idempotencyKey'> | null;
  /** The flow's filter's decision; absent when no filter was applied. */
  filter?: { matched: boolean; detail: string };
}

/** What of a source its requests are judged by. */
export type JudgedSource = Pick<
  InboundSource,
  'status' | 'format' | 'verification' | 'idempotency' | 'eventType' | 'flowId'
>;

/** A source as judged: with its flow when it is a flow's webhook, and its secrets opened. */
export interface JudgedTarget<S extends JudgedSource = JudgedSource> {
  source: S;
  flow: Flow | null;
  secrets: { secret: string; expiresAt: number | null }[];
}

/**
 * The status requests meet: a flow's webhook is INACTIVE if it or its flow is, DRAFT if either
 * is, and DEPLOYED only when both are. `of` names what holds the status.
 */
export function effectiveStatus(target: Pick<JudgedTarget, 'source' | 'flow'>): {
  status: InboundSourceStatus;
  of: string;
} {
  const { source, flow } = target;
  // A webhook whose flow is gone routes nowhere: it is refused as INACTIVE.
  if (source.flowId && !flow) return { status: 'INACTIVE', of: "the webhook's flow (deleted)" };
  if (!flow) return { status: source.status, of: 'the source' };
  for (const status of ['INACTIVE', 'DRAFT'] as const) {
    if (source.status === status) return { status, of: 'the webhook' };
    if (flow.status === status) return { status, of: 'the flow' };
  }
  return { status: 'DEPLOYED', of: 'the flow' };
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
  target: JudgedTarget,
  request: JudgedRequest,
  options: { verify: boolean; dedupe: boolean; asDeployed?: boolean },
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
  const { status, of } = effectiveStatus(target);
  if (status !== 'DEPLOYED' && !options.asDeployed) {
    return {
      ...accepted,
      outcome: 'RECORDED',
      reason: `${of} is ${status}: recorded, not routed`,
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
  const routed = { parsed: parse.value, headers: request.headers };
  const filter = target.flow?.filter ? evaluate(target.flow.filter, routed) : undefined;
  if (filter && !filter.matched) {
    return { ...accepted, outcome: 'FILTERED', reason: `filtered out: ${filter.detail}`, dedupeKey, filter };
  }
  const event = await route(deps.eventTypes, target, request, parse.value);
  if ('unroutable' in event) {
    return { ...accepted, outcome: 'UNROUTABLE', reason: event.unroutable, dedupeKey, filter };
  }
  return { ...accepted, outcome: 'ROUTED', reason: null, dedupeKey, event: event.event, filter };
}

/** The event a parsed request becomes by its source's selector, or its flow's route. */
async function route(
  eventTypes: EventTypeService,
  target: JudgedTarget,
  request: JudgedRequest,
  parsed: unknown,
): Promise<{ event: NonNullable<Judgement['event']> } | { unroutable: string }> {
  const { source, flow } = target;
  const selector = flow ? flow.eventType : source.eventType!;
  const routed = { parsed, headers: request.headers };
  const named =
    'fixed' in selector
      ? selector.fixed
      : 'bodyPath' in selector
        ? valueAt(parsed, selector.bodyPath)
        : first(request.headers[selector.header]);
  const from =
    'fixed' in selector
      ? flow
        ? 'the flow'
        : 'the source'
      : 'bodyPath' in selector
        ? `body path ${selector.bodyPath}`
        : `header ${selector.header}`;
  if (typeof named !== 'string') return { unroutable: `no event type at ${from}` };
  if (!eventTypeName.safeParse(named).success) {
    return {
      unroutable: `"${named.slice(0, 100)}" at ${from} is not an event type name ([module.]model.action)`,
    };
  }
  const mapping = flow?.mapping ?? null;
  const meta = mapMeta(mapping, parseEventTypeName(named), routed);
  if ('problem' in meta) return { unroutable: meta.problem };
  const type = eventTypeOf(meta);
  const current = mapCurrent(mapping, routed);
  if (Buffer.byteLength(JSON.stringify(current)) > MAX_EVENT_PAYLOAD_BYTES) {
    return { unroutable: `the parsed body is over the ${MAX_EVENT_PAYLOAD_BYTES} bytes an event may carry` };
  }
  try {
    await eventTypes.require(type, ['eventType'], current);
  } catch (error) {
    if (error instanceof InvalidInputError)
      return { unroutable: error.problems.map((p) => p.message).join('; ') };
    throw error;
  }
  return {
    event: { id: newId(), type, meta, current, previous: null, occurredAt: request.receivedAt },
  };
}

/** The provider's delivery id, by the source's selector or its preset's; null when it has none. */
function deliveryId(source: JudgedSource, headers: JudgedRequest['headers'], parsed: unknown): string | null {
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
