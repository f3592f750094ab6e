import { z } from 'zod';
import type { AuditService } from '../audit/audit.service.ts';
import { findByIds } from '../db/by-ids.ts';
import { newId } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import type { EventTypeService } from '../event-types/event-type.service.ts';
import { createdWithin, findPage, timeRange, type Page, type PageRequest } from '../pagination.ts';
import type { Actor } from '../tenancy/actor.ts';
import { parseBody, type ParsedBody } from './body.ts';
import { FlowEntity } from './flow.entity.ts';
import { effectiveStatus, judge, type JudgedTarget, type Judgement } from './inbound-judge.ts';
import type { InboundReceiver } from './inbound-receiver.ts';
import { InboundRequestEntity, type InboundOutcome, type InboundRequest } from './inbound-request.entity.ts';
import { InboundSourceEntity, type InboundSource } from './inbound-source.entity.ts';
import type { InboundSourceService } from './inbound-source.service.ts';
import type { InboundRequestRow } from './inbound-store.ts';
import { canReverify } from './verification.ts';

export interface InboundRequestFilter {
  sourceId?: string | null;
  outcomes?: readonly InboundOutcome[] | null;
  from?: Date | null;
  to?: Date | null;
}

/** Outcomes of requests that passed verification (or needed none) and were kept. */
const ACCEPTED: readonly InboundOutcome[] = ['ROUTED', 'RECORDED', 'UNROUTABLE', 'FILTERED', 'DUPLICATE'];

const MAX_REPLAY_IDS = 100;
const MAX_REPLAY_RANGE = 1_000;
const REPLAY_BATCH = 20;

export const replayInput = z
  .object({
    ids: z.array(z.uuid()).max(MAX_REPLAY_IDS).nullish(),
    sourceId: z.uuid().nullish(),
    from: z.date().nullish(),
    to: z.date().nullish(),
    reverify: z.boolean().nullish(),
    dryRun: z.boolean().nullish(),
  })
  .superRefine((input, ctx) => {
    if (!input.ids?.length === !input.sourceId) {
      ctx.addIssue({ code: 'custom', path: ['ids'], message: 'give ids, or a sourceId with a time range' });
    }
    if (input.ids?.length && (input.from || input.to)) {
      ctx.addIssue({ code: 'custom', path: ['from'], message: 'a time range goes with sourceId, not ids' });
    }
  });
export type ReplayInput = z.input<typeof replayInput>;

/** One stored request replayed: what it became, or why it was skipped. */
export interface ReplayItem {
  original: InboundRequest;
  /** What the replay became; SKIPPED when it was not replayed (see reason). */
  outcome: InboundOutcome | 'SKIPPED';
  reason: string | null;
  eventType: string | null;
  /** The stored replay; null on a dry run and when skipped. */
  request: InboundRequest | null;
}

/**
 * The inbound log: reading stored requests (their bytes, and the parsed copy derived again), and
 * replaying them through the source as it is now configured.
 */
export class InboundRequestService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly sources: InboundSourceService;
  private readonly receiver: InboundReceiver;
  private readonly eventTypes: EventTypeService;

  constructor(deps: {
    orm: Orm;
    audit: AuditService;
    sources: InboundSourceService;
    receiver: InboundReceiver;
    eventTypes: EventTypeService;
  }) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.sources = deps.sources;
    this.receiver = deps.receiver;
    this.eventTypes = deps.eventTypes;
  }

  /** The tenant's requests, newest first, of one source and some outcomes when asked. */
  list(actor: Actor, filter: InboundRequestFilter, page: PageRequest): Promise<Page<InboundRequest>> {
    if (filter.sourceId != null && !z.uuid().safeParse(filter.sourceId).success) {
      return Promise.resolve({ items: [], hasNextPage: false });
    }
    const outcomes = [...new Set(filter.outcomes ?? [])];
    return findPage(tenantEm(this.orm, actor), InboundRequestEntity, page, (query) =>
      query
        .$if(!!filter.sourceId, (q) => q.where('source_id', '=', filter.sourceId!))
        .$if(outcomes.length > 0, (q) => q.where('outcome', 'in', outcomes))
        .$call(createdWithin(filter)),
    );
  }

  getMany(actor: Actor, ids: readonly string[]): Promise<(InboundRequest | null)[]> {
    return findByIds(tenantEm(this.orm, actor), InboundRequestEntity, ids);
  }

  /** The stored bytes of requests, in the order asked; null where none was kept. */
  async bodies(actor: Actor, ids: readonly string[]): Promise<(Buffer | null)[]> {
    const valid = ids.filter((id) => z.uuid().safeParse(id).success);
    const rows = valid.length
      ? await tenantEm(this.orm, actor).find(
          InboundRequestEntity,
          { id: { $in: valid } },
          { fields: ['id', 'body'] },
        )
      : [];
    // PGlite gives bytea as a Uint8Array, node-postgres as a Buffer: a view, not a copy.
    const asBuffer = (b: Uint8Array) =>
      Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
    const byId = new Map(rows.map((row) => [row.id, row.body ? asBuffer(row.body) : null]));
    return ids.map((id) => byId.get(id) ?? null);
  }

  /** The parsed copy of a stored body, derived again with the source's format as it was received. */
  parsed(
    request: Pick<InboundRequest, 'contentType'>,
    format: InboundSource['format'],
    body: Buffer,
  ): ParsedBody {
    return parseBody(format, body, request.contentType ?? undefined);
  }

  /**
   * Runs stored requests through their source again, oldest first: one, some by id, or a source's
   * requests of a time range. Without `reverify` only requests that passed verification are
   * replayed (a refused request replayed unverified would let anyone in); with it, each is
   * verified again as at its receipt. Each replay is stored as a new request (`replayOf`), never
   * deduplicated; a dry run stores nothing and says what each would become.
   */
  async replay(actor: Actor, raw: ReplayInput): Promise<ReplayItem[]> {
    const input = (() => {
      const result = replayInput.safeParse(raw);
      if (result.success) return result.data;
      throw new InvalidInputError(
        result.error.issues.map((issue) => ({
          path: ['input', ...issue.path.map(String)],
          message: issue.message,
        })),
      );
    })();
    const originals = await this.replayed(actor, input);
    const sourceIds = [...new Set(originals.map((r) => r.sourceId))];
    const targets = await this.targets(actor, sourceIds);
    const items: ReplayItem[] = [];
    // Bodies a batch at a time: a range of a thousand requests of a megabyte each is not held at once.
    for (let start = 0; start < originals.length; start += REPLAY_BATCH) {
      const batch = originals.slice(start, start + REPLAY_BATCH);
      const bodies = await this.bodies(
        actor,
        batch.map((r) => r.id),
      );
      for (const [index, original] of batch.entries()) {
        items.push(
          await this.replayOne(original, bodies[index] ?? null, targets.get(original.sourceId), input),
        );
      }
    }
    const replayed = items.filter((item) => item.request);
    if (replayed.length > 0) {
      await this.audit.transact(actor, async (_tx, record) => {
        record({
          action: 'inbound_request.replayed',
          relationName: 'InboundSource',
          relationId: sourceIds.length === 1 ? sourceIds[0]! : null,
          metadata: {
            count: replayed.length,
            reverify: !!input.reverify,
            requests: replayed.map((item) => ({ original: item.original.id, replay: item.request!.id })),
          },
        });
      });
    }
    return items;
  }

  /** The sources by id, each with its flow and its secrets opened. */
  private async targets(actor: Actor, ids: string[]): Promise<Map<string, JudgedTarget<InboundSource>>> {
    const em = tenantEm(this.orm, actor);
    const sources = await em.find(InboundSourceEntity, { id: { $in: ids } }, { populate: ['secrets'] });
    const flowIds = sources.flatMap((source) => (source.flowId ? [source.flowId] : []));
    const flows = new Map(
      (flowIds.length ? await em.find(FlowEntity, { id: { $in: flowIds } }) : []).map((f) => [f.id, f]),
    );
    return new Map(
      sources.map((source) => [
        source.id,
        {
          source,
          flow: source.flowId ? (flows.get(source.flowId) ?? null) : null,
          secrets: this.sources.openSecrets(source),
        },
      ]),
    );
  }

  private async replayed(actor: Actor, input: z.output<typeof replayInput>): Promise<InboundRequest[]> {
    const em = tenantEm(this.orm, actor);
    if (input.ids?.length) {
      const ids = [...new Set(input.ids)];
      const found = await findByIds(em, InboundRequestEntity, ids);
      const missing = ids.filter((_, i) => !found[i]);
      if (missing.length > 0) throw new NotFoundError('InboundRequest', missing.join(', '));
      return (found as InboundRequest[]).sort((a, b) => (a.id < b.id ? -1 : 1));
    }
    if (!(await em.findOne(InboundSourceEntity, { id: input.sourceId! }))) {
      throw new NotFoundError('InboundSource', input.sourceId!);
    }
    const rows = await em.find(
      InboundRequestEntity,
      // A provider's retry of a delivery already held would replay that delivery twice.
      { sourceId: input.sourceId!, replayOf: null, outcome: { $ne: 'DUPLICATE' }, ...timeRange(input) },
      { orderBy: { createdAt: 'asc', id: 'asc' }, limit: MAX_REPLAY_RANGE + 1 },
    );
    if (rows.length > MAX_REPLAY_RANGE) {
      throw new InvalidInputError([
        {
          path: ['input', 'from'],
          message: `more than ${MAX_REPLAY_RANGE} requests in the range: narrow it`,
        },
      ]);
    }
    return rows;
  }

  private async replayOne(
    original: InboundRequest,
    body: Buffer | null,
    target: JudgedTarget<InboundSource> | undefined,
    input: z.output<typeof replayInput>,
  ): Promise<ReplayItem> {
    const skip = (reason: string): ReplayItem => ({
      original,
      outcome: 'SKIPPED',
      reason,
      eventType: null,
      request: null,
    });
    if (!target) return skip('its source was deleted');
    const { source } = target;
    const { status, of } = effectiveStatus(target);
    if (status === 'INACTIVE') return skip(`${of} is INACTIVE`);
    if (!body) return skip('its body was not kept');
    if (original.outcome === 'DUPLICATE') {
      return skip("a sender's repeat of an earlier request (its duplicateOf): replay that one");
    }
    if (input.reverify && !canReverify(source.verification)) {
      return skip(`${source.verification.preset} credentials are not stored: it cannot be verified again`);
    }
    if (!input.reverify && (!ACCEPTED.includes(original.outcome) || original.verification === 'FAILED')) {
      return skip(`it was refused (${original.outcome}): replay it with reverify`);
    }
    const judgement: Judgement = await judge(
      { eventTypes: this.eventTypes },
      target,
      { headers: original.headers, body, receivedAt: original.createdAt },
      { verify: !!input.reverify, dedupe: false },
    );
    const eventType = judgement.event?.type ?? null;
    if (input.dryRun || judgement.outcome === 'UNAUTHORIZED') {
      return { original, outcome: judgement.outcome, reason: judgement.reason, eventType, request: null };
    }
    const row: InboundRequestRow = {
      ...original,
      id: newId(),
      body,
      replayOf: original.id,
      duplicateOf: null,
      dedupeKey: null,
      eventId: null,
      createdAt: new Date(),
    };
    const stored = await this.receiver.store(row, judgement);
    const { body: _body, ...request } = stored;
    return {
      original,
      outcome: stored.outcome,
      reason: stored.reason ?? null,
      eventType,
      request: request as InboundRequest,
    };
  }
}
