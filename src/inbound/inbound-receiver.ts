import { createHash } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import ipaddr from 'ipaddr.js';
import { LRUCache } from 'lru-cache';
import { newId } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import type { Logger } from '../logger.ts';
import type { RateLimits } from '../tenancy/rate-limits.ts';
import { TenantEntity } from '../tenancy/tenant.entity.ts';
import { annotate, currentTraceparent, inSpan } from '../tracing.ts';
import type { OutboxRelay } from '../util/outbox-relay.ts';
import { InboundSourceEntity, type InboundSource } from './inbound-source.entity.ts';
import { sha256Hex, type InboundSourceService } from './inbound-source.service.ts';
import type { InboundOutcome } from './inbound-request.entity.ts';
import type { InboundRequestSummary } from './inbound-outbox.ts';
import { FlowEntity } from './flow.entity.ts';
import { effectiveStatus, judge, type JudgedTarget, type Judgement } from './inbound-judge.ts';
import { insertAccepted, insertDuplicate, insertRequest, type InboundRequestRow } from './inbound-store.ts';
import { acceptsContentType } from './body.ts';
import { credentialHeaders } from './verification.ts';
import type { EventTypeService } from '../event-types/event-type.service.ts';

/** A request to `/in/<token>` as the HTTP edge hands it over; the body is read here, within the source's limit. */
export interface IncomingInbound {
  token: string;
  method: string;
  query: string | null;
  headers: IncomingHttpHeaders;
  clientIp: string | null;
  body: AsyncIterable<Uint8Array>;
}

export interface InboundAnswer {
  status: number;
  /** What became of the request (an InboundOutcome, or NOT_FOUND / RATE_LIMITED when nothing was stored). */
  outcome: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  /** False when the answer came before the body was read to its end: the connection must close. */
  bodyRead: boolean;
}

/** A source as the receiver holds it: looked up by its URL, with its flow and its secrets opened. */
export interface Target extends JudgedTarget<InboundSource> {
  suspended: boolean;
}

const REDACTED = '[redacted]';

/**
 * The receiving end of `POST /in/<token>`: refuses what the source does not take (each refusal
 * logged with its reason), keeps every accepted request exactly as received, and routes those of
 * DEPLOYED sources into events through the same outbox and stream as publishEvent. The answer is
 * given once the request is stored; the stream gets the event right after.
 */
export class InboundReceiver {
  private readonly orm: Orm;
  private readonly sources: InboundSourceService;
  private readonly eventTypes: EventTypeService;
  private readonly events: Pick<OutboxRelay<PublishedEvent>, 'publish'>;
  private readonly announcements: Pick<OutboxRelay<InboundRequestSummary>, 'publish'>;
  private readonly limits: RateLimits;
  private readonly logger: Logger;
  private readonly requestsPerSecond: number;
  /** The configured bound: a source saved under a higher one is held to it. */
  private readonly maxBytes: number;
  private readonly timeoutMs: number;
  /** Sources by URL token hash, a miss as null; dropped when a source changes here, else after 2 s. */
  private readonly targets = new LRUCache<string, { target: Target | null }>({ max: 10_000, ttl: 2_000 });
  /** Counts changes: a lookup that began before one does not cache what it read. */
  private generation = 0;
  /**
   * A flood over a source's rate writes one log entry a second, not one per request: each entry
   * counts the requests refused, unlogged, since the one before.
   */
  private readonly floods = new LRUCache<string, { until: number; count: number }>({ max: 10_000 });

  constructor(
    deps: {
      orm: Orm;
      sources: InboundSourceService;
      eventTypes: EventTypeService;
      events: Pick<OutboxRelay<PublishedEvent>, 'publish'>;
      announcements: Pick<OutboxRelay<InboundRequestSummary>, 'publish'>;
      limits: RateLimits;
      logger: Logger;
    },
    options: { requestsPerSecond: number; maxBytes: number; statementTimeoutMs: number },
  ) {
    this.orm = deps.orm;
    this.sources = deps.sources;
    this.eventTypes = deps.eventTypes;
    this.events = deps.events;
    this.announcements = deps.announcements;
    this.limits = deps.limits;
    this.logger = deps.logger;
    this.requestsPerSecond = options.requestsPerSecond;
    this.maxBytes = options.maxBytes;
    this.timeoutMs = options.statementTimeoutMs;
    this.sources.events.on('changed', (hashes) => {
      this.generation++;
      hashes.forEach((hash) => this.targets.delete(hash));
    });
  }

  /**
   * A trace starts here and follows the request's event to its deliveries. A traceparent the
   * sender sent is not continued: it comes from outside (it is kept with the request's headers).
   */
  receive(incoming: IncomingInbound): Promise<InboundAnswer> {
    return inSpan('inbound.receive', { root: true }, async () => {
      const answered = await this.answerTo(incoming);
      annotate({ 'herald.inbound.outcome': answered.outcome, 'http.response.status_code': answered.status });
      return answered;
    });
  }

  private async answerTo(incoming: IncomingInbound): Promise<InboundAnswer> {
    const target = await this.target(incoming.token);
    if (!target) return answer(404, 'NOT_FOUND', 'no inbound source has this URL', null, false);
    const { source } = target;
    annotate({ 'herald.inbound.source.id': source.id, 'herald.tenant.id': source.tenantId });
    const base = this.baseRow(target, incoming);
    const refuse = (outcome: InboundOutcome, status: number, reason: string, body?: Buffer) =>
      this.refuse(base, outcome, status, reason, body);

    const { status, of } = effectiveStatus(target);
    if (target.suspended || status === 'INACTIVE') {
      const why = target.suspended ? "the source's tenant is suspended" : `${of} is INACTIVE`;
      return refuse('NOT_FOUND', 404, why);
    }
    if (!source.allowedMethods.includes(incoming.method)) {
      const refused = await refuse('METHOD_NOT_ALLOWED', 405, `${incoming.method} is not allowed`);
      return { ...refused, headers: { allow: source.allowedMethods.join(', ') } };
    }
    if (source.allowedCidrs.length > 0 && !allowedIp(incoming.clientIp, source.allowedCidrs)) {
      return refuse('FORBIDDEN', 403, `${incoming.clientIp ?? 'the sender'} is not in the allowed networks`);
    }
    const wait = this.limits.takeFrom(
      `inbound:${source.id}`,
      source.requestsPerSecond ?? this.requestsPerSecond,
    );
    if (wait > 0) {
      const retryAfter = { 'retry-after': String(Math.ceil(wait / 1000)) };
      const unlogged = this.floods.get(source.id);
      if (unlogged && Date.now() < unlogged.until) {
        unlogged.count++;
        return {
          ...answer(429, 'RATE_LIMITED', publicReason('RATE_LIMITED'), null, false),
          headers: retryAfter,
        };
      }
      this.floods.set(source.id, { until: Date.now() + 1000, count: 0 });
      const more = unlogged?.count ? `; ${unlogged.count} more since the entry before, not logged` : '';
      const refused = await refuse('RATE_LIMITED', 429, `over the source rate of requests a second${more}`);
      return { ...refused, headers: retryAfter };
    }
    const maxBytes = Math.min(source.maxBytes, this.maxBytes);
    const announced = Number(incoming.headers['content-length'] ?? 0);
    if (announced > maxBytes) {
      base.bodyBytes = announced;
      return refuse('TOO_LARGE', 413, `the body of ${announced} bytes is over the source's ${maxBytes}`);
    }
    const read = await readLimited(incoming.body, maxBytes);
    if ('over' in read) {
      base.bodyBytes = read.over;
      return refuse('TOO_LARGE', 413, `the body is over the source's ${maxBytes} bytes`);
    }
    const body = read.bytes;
    base.bodyBytes = body.length;
    base.bodySha256 = createHash('sha256').update(body).digest('hex');
    if (!acceptsContentType(source.format, base.contentType ?? undefined)) {
      const type = base.contentType ?? 'no Content-Type';
      const refused = await refuse(
        'UNSUPPORTED_MEDIA_TYPE',
        415,
        `${type} does not fit the source's format ${source.format}`,
        body,
      );
      return { ...refused, bodyRead: true };
    }
    const judgement = await judge(
      { eventTypes: this.eventTypes },
      target,
      { headers: incoming.headers, body, receivedAt: base.createdAt },
      { verify: true, dedupe: true },
    );
    if (judgement.outcome === 'UNAUTHORIZED') {
      const refused = await this.refuse(base, 'UNAUTHORIZED', 401, judgement.reason!, body, judgement);
      return { ...refused, bodyRead: true };
    }
    const stored = await this.store({ ...base, body }, judgement);
    return answer(200, stored.outcome, null, stored.id, true);
  }

  /**
   * Stores a judged request that passed verification, and publishes its event and announcement
   * once committed. A duplicate of a delivery id already held is stored as DUPLICATE.
   */
  async store(row: InboundRequestRow, judgement: Judgement): Promise<InboundRequestRow> {
    // One event per stored request (the request's unique delivery id is what stops a provider's
    // retry); its key also makes the stream drop a relay's repeat of it.
    const event = judgement.event && {
      ...judgement.event,
      tenantId: row.tenantId,
      idempotencyKey: `inbound:${row.id}`,
      traceparent: currentTraceparent(),
    };
    const full: InboundRequestRow = {
      ...row,
      ...fieldsOf(judgement),
      eventId: event?.id ?? null,
      dedupeKey: judgement.dedupeKey,
    };
    let stored = full;
    if (!(await insertAccepted(this.orm, full, event, this.timeoutMs))) {
      stored = await insertDuplicate(
        this.orm,
        { ...full, outcome: 'DUPLICATE', reason: `delivery id ${judgement.dedupeKey} was received before` },
        judgement.dedupeKey!,
        this.timeoutMs,
      );
    } else if (event) {
      void this.events.publish([event]);
    }
    void this.announcements.publish([withoutBody(stored)]);
    return stored;
  }

  /** The row of a request before it is judged: what came, from where, with credentials redacted. */
  baseRow(target: Target, incoming: Omit<IncomingInbound, 'body'>): InboundRequestRow {
    const { source } = target;
    const hidden = new Set(credentialHeaders(source.verification));
    const headers: Record<string, string | string[]> = {};
    for (const [name, value] of Object.entries(incoming.headers)) {
      if (value !== undefined) headers[name] = hidden.has(name) ? REDACTED : value;
    }
    const contentType = incoming.headers['content-type'];
    return {
      id: newId(),
      tenantId: source.tenantId,
      sourceId: source.id,
      method: incoming.method.slice(0, 16),
      // The token is the URL's secret: the log names the source, not its token.
      path: `/in/${incoming.token.slice(0, 4)}…`,
      query: incoming.query?.slice(0, 2048) ?? null,
      headers,
      contentType: contentType?.slice(0, 255) ?? null,
      clientIp: incoming.clientIp,
      body: null,
      bodyBytes: 0,
      bodySha256: null,
      outcome: 'RECORDED',
      statusCode: 200,
      reason: null,
      verification: 'NOT_CHECKED',
      verificationDetail: null,
      parseStatus: 'NOT_PARSED',
      parseError: null,
      idempotencyKey: null,
      dedupeKey: null,
      duplicateOf: null,
      replayOf: null,
      eventId: null,
      createdAt: new Date(),
    };
  }

  private async refuse(
    base: InboundRequestRow,
    outcome: InboundOutcome,
    status: number,
    reason: string,
    body?: Buffer,
    judgement?: Judgement,
  ): Promise<InboundAnswer> {
    const row: InboundRequestRow = {
      ...base,
      ...(judgement ? fieldsOf(judgement) : {}),
      outcome,
      statusCode: status,
      reason: logText(reason),
      body: body ?? null,
    };
    await insertRequest(this.orm, row, this.timeoutMs);
    void this.announcements.publish([withoutBody(row)]);
    this.logger.debug({ sourceId: base.sourceId, outcome, reason }, 'inbound request refused');
    return answer(status, outcome, publicReason(outcome), row.id, false);
  }

  /** The source a URL token names (its previous token too, within the grace period), cached. */
  async target(token: string): Promise<Target | null> {
    const hash = sha256Hex(token);
    const cached = this.targets.get(hash);
    if (cached) return cached.target;
    const generation = this.generation;
    const em = this.orm.em.fork();
    const source = await em.findOne(
      InboundSourceEntity,
      {
        $or: [
          { urlTokenHash: hash },
          { previousUrlTokenHash: hash, previousUrlTokenExpiresAt: { $gt: new Date() } },
        ],
      },
      { filters: false, populate: ['secrets'] },
    );
    const tenant = source
      ? await em.findOne(TenantEntity, { id: source.tenantId }, { fields: ['suspendedAt'], filters: false })
      : null;
    const flow = source?.flowId
      ? await em.findOne(FlowEntity, { id: source.flowId }, { filters: false })
      : null;
    const target = source
      ? {
          source,
          flow,
          secrets: this.sources.openSecrets(source),
          suspended: !!tenant?.suspendedAt,
        }
      : null;
    if (generation === this.generation) this.targets.set(hash, { target });
    return target;
  }
}

/** What a judgement sets on the stored row. */
function fieldsOf(judgement: Judgement): Partial<InboundRequestRow> {
  return {
    outcome: judgement.outcome,
    statusCode: judgement.outcome === 'UNAUTHORIZED' ? 401 : 200,
    reason: logText(judgement.reason),
    verification: judgement.verification.status,
    verificationDetail: logText(judgement.verification.detail),
    parseStatus: judgement.parse.status,
    parseError: logText(judgement.parse.error),
    idempotencyKey: judgement.idempotencyKey,
  };
}

/**
 * Text about a request as the log keeps it: a parser's message may quote what it choked on, so a
 * NUL is written out and a lone surrogate replaced (PostgreSQL refuses both), and it is shortened.
 */
function logText(text: string | null | undefined): string | null {
  return text == null ? null : text.slice(0, 1000).replaceAll('\0', '\\u0000').toWellFormed();
}

const withoutBody = ({ body: _body, ...summary }: InboundRequestRow): InboundRequestSummary => summary;

/** What a refused sender is told; the inbound log holds the detail (a sender may be an attacker). */
function publicReason(outcome: InboundOutcome): string {
  switch (outcome) {
    case 'UNAUTHORIZED':
      return 'the request could not be verified';
    case 'NOT_FOUND':
      return 'no inbound source has this URL';
    case 'METHOD_NOT_ALLOWED':
      return 'this method is not allowed';
    case 'FORBIDDEN':
      return 'this sender is not allowed';
    case 'TOO_LARGE':
      return 'the body is too large';
    case 'UNSUPPORTED_MEDIA_TYPE':
      return "the Content-Type does not fit the source's format";
    case 'RATE_LIMITED':
      return 'too many requests';
    default:
      return outcome;
  }
}

function answer(
  status: number,
  outcome: string,
  message: string | null,
  id: string | null,
  bodyRead: boolean,
): InboundAnswer {
  const body = message ? { id, error: { code: outcome, message } } : { id, outcome };
  return { status, outcome, headers: {}, body, bodyRead };
}

function allowedIp(ip: string | null, cidrs: readonly string[]): boolean {
  if (!ip || !ipaddr.isValid(ip)) return false;
  const address = ipaddr.process(ip);
  return cidrs.some((cidr) => {
    const [range, bits] = ipaddr.parseCIDR(cidr);
    return address.kind() === range.kind() && address.match(range, bits);
  });
}

/** The body, or how many bytes had come when it passed `limit` (the rest is not read). */
async function readLimited(
  body: AsyncIterable<Uint8Array>,
  limit: number,
): Promise<{ bytes: Buffer } | { over: number }> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) return { over: size };
    chunks.push(chunk);
  }
  return { bytes: Buffer.concat(chunks, size) };
}
