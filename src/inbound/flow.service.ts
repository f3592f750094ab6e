import { LockMode } from '@mikro-orm/core';
import { z } from 'zod';
import type { AuditEntryInput, AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { findByIds } from '../db/by-ids.ts';
import type { EntityManager, Orm } from '../db/orm.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import { InvalidInputError, NotFoundError, type FieldProblem } from '../errors.ts';
import { parseEventTypeName, type EventTypeService } from '../event-types/event-type.service.ts';
import { containing, parse, refuseNulls, text } from '../input.ts';
import { findPage, type Page, type PageRequest } from '../pagination.ts';
import type { Actor } from '../tenancy/actor.ts';
import { acceptsContentType, type InboundFormat } from './body.ts';
import type { InboundOutcome } from './inbound-request.entity.ts';
import { FlowEntity, type Flow, type FlowStatus } from './flow.entity.ts';
import {
  createFlowInput,
  createFlowWebhookInput,
  DEFAULT_FLOW_HMAC_HEADER,
  FLOW_REQUIRED_ON_UPDATE,
  FLOW_WEBHOOK_REQUIRED_ON_UPDATE,
  testFlowInput,
  updateFlowInput,
  updateFlowWebhookInput,
  type CreateFlowInput,
  type CreateFlowWebhookInput,
  type TestFlowInput,
  type UpdateFlowInput,
  type UpdateFlowWebhookInput,
} from './flow.input.ts';
import {
  eventTypeOf,
  filterProblems,
  mapMeta,
  mappingProblems,
  type FlowFilter,
  type FlowMapping,
} from './flow-route.ts';
import { effectiveStatus, judge, type JudgedSource, type Judgement } from './inbound-judge.ts';
import { InboundSourceEntity, type EventTypeSelector, type InboundSource } from './inbound-source.entity.ts';
import { deletedSourceEntry, type InboundSourceService } from './inbound-source.service.ts';
import type { CreateInboundSourceInput, UpdateInboundSourceInput } from './inbound-source.input.ts';

const AUDITED = ['name', 'description', 'status', 'deployedAt', 'eventType', 'filter', 'mapping'] as const;

export interface FlowFilterInput {
  status?: FlowStatus | null;
  search?: string | null;
}

/** What testFlow shows: what a request would become, nothing stored. */
export interface FlowTest extends Omit<Judgement, 'outcome'> {
  outcome: Judgement['outcome'] | 'UNSUPPORTED_MEDIA_TYPE';
  /** Whether the webhook (when given) and the flow are DEPLOYED: a request now is routed so. */
  deployed: boolean;
  /** What a request now becomes, with the statuses as they are (RECORDED or NOT_FOUND if not deployed). */
  outcomeNow: InboundOutcome;
}

/** Where the source service's problems with a webhook's verification are, in the webhook's input. */
const WEBHOOK_PATHS: Record<string, string> = {
  'input.verification.secret': 'input.hmacSecretKey',
  'input.verification.hmac.algorithm': 'input.hmacAlgorithm',
  'input.verification.hmac.header': 'input.hmacHeader',
  'input.verification.hmac.encoding': 'input.hmacEncoding',
  'input.verification.hmac': 'input.hmacAlgorithm',
  'input.sampleBody': 'input.body',
};

/**
 * Flows (Patchworks): a group of inbound sources, its webhooks, with one route into the pipeline.
 * A webhook is an inbound source with its flow set, so its URL, verification, log, replay and
 * live tail are a source's; the flow decides its event type, filter and mapping, and a request is
 * routed only when the webhook and the flow are both DEPLOYED.
 */
export class FlowService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly eventTypes: EventTypeService;
  private readonly sources: InboundSourceService;
  private readonly maxBytes: number;

  constructor(
    deps: { orm: Orm; audit: AuditService; eventTypes: EventTypeService; sources: InboundSourceService },
    options: { maxBytes: number },
  ) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.eventTypes = deps.eventTypes;
    this.sources = deps.sources;
    this.maxBytes = options.maxBytes;
  }

  async create(actor: Actor, raw: CreateFlowInput): Promise<Flow> {
    const input = parse(createFlowInput, raw);
    await this.check(actor, input);
    const status = input.status ?? 'DRAFT';
    return this.audit.transact(actor, async (tx, record) => {
      const flow = tx.create(FlowEntity, {
        tenantId: actor.tenantId,
        name: input.name,
        description: input.description ?? null,
        status,
        deployedAt: status === 'DEPLOYED' ? new Date() : null,
        eventType: input.eventType,
        filter: (input.filter as FlowFilter | null | undefined) ?? null,
        mapping: (input.mapping as FlowMapping | null | undefined) ?? null,
      });
      await tx.flush();
      record(flowEntry('flow.created', null, flow));
      return flow;
    });
  }

  async update(actor: Actor, id: string, raw: UpdateFlowInput): Promise<Flow> {
    refuseNulls(raw, FLOW_REQUIRED_ON_UPDATE);
    const input = parse(updateFlowInput, raw);
    const stored = await this.find(actor, id);
    if (!stored) throw new NotFoundError('Flow', id);
    await this.check(actor, {
      eventType: input.eventType ?? stored.eventType,
      filter: input.filter,
      mapping: input.mapping === undefined ? stored.mapping : input.mapping,
    });
    return this.change(actor, id, 'flow.updated', (flow) => {
      if (input.name != null) flow.name = input.name;
      if (input.description !== undefined) flow.description = input.description;
      if (input.status != null) setStatus(flow, input.status);
      if (input.eventType != null) flow.eventType = input.eventType;
      if (input.filter !== undefined) flow.filter = input.filter as FlowFilter | null;
      if (input.mapping !== undefined) flow.mapping = input.mapping;
    });
  }

  /** DEPLOYED from now: its DEPLOYED webhooks' requests become events. */
  deploy(actor: Actor, id: string): Promise<Flow> {
    return this.change(actor, id, 'flow.deployed', (flow) => {
      flow.status = 'DEPLOYED';
      flow.deployedAt = new Date();
    });
  }

  /** Deletes the flow and its webhooks: their URLs answer 404 from then on. */
  async delete(actor: Actor, id: string): Promise<Flow> {
    const { flow, webhooks } = await this.audit.transact(actor, async (tx, record) => {
      const flow = await this.modifiable(tx, id);
      const webhooks = await tx.find(InboundSourceEntity, { flowId: flow.id });
      for (const webhook of webhooks) {
        tx.remove(webhook);
        record(deletedSourceEntry(webhook));
      }
      tx.remove(flow);
      const entry = flowEntry('flow.deleted', flow, null);
      record({ ...entry, metadata: { ...entry.metadata, webhooksDeleted: webhooks.length } });
      return { flow, webhooks };
    });
    this.sources.forget(webhooks);
    return flow;
  }

  async find(actor: Actor, id: string): Promise<Flow | null> {
    if (!z.uuid().safeParse(id).success) return null;
    return tenantEm(this.orm, actor).findOne(FlowEntity, { id });
  }

  getMany(actor: Actor, ids: readonly string[]): Promise<(Flow | null)[]> {
    return findByIds(tenantEm(this.orm, actor), FlowEntity, ids);
  }

  list(actor: Actor, filter: FlowFilterInput, page: PageRequest): Promise<Page<Flow>> {
    const search = filter.search == null ? null : parse(text(255), filter.search);
    const like = search ? containing(search) : null;
    return findPage(tenantEm(this.orm, actor), FlowEntity, page, (query) =>
      query
        .$if(!!filter.status, (q) => q.where('status', '=', filter.status!))
        .$if(!!like, (q) => q.where('name', 'ilike', like!)),
    );
  }

  /** A flow's webhooks, newest first; none for a flow the tenant does not have. */
  async webhooks(actor: Actor, flowId: string, page: PageRequest): Promise<Page<InboundSource>> {
    const flow = await this.find(actor, flowId);
    if (!flow) return { items: [], hasNextPage: false };
    return this.sources.list(actor, { flowId: flow.id }, page);
  }

  async createWebhook(actor: Actor, raw: CreateFlowWebhookInput): Promise<InboundSource> {
    const input = parse(createFlowWebhookInput, raw);
    const flow = await this.find(actor, input.flowId);
    if (!flow) throw new NotFoundError('Flow', input.flowId);
    // A key alone signs with HMAC-SHA256; any signing setting without a key is refused for want of it.
    const signed = [input.hmacAlgorithm, input.hmacSecretKey, input.hmacHeader, input.hmacEncoding].some(
      (value) => value != null,
    );
    const source: CreateInboundSourceInput = {
      name: input.name ?? `${flow.name.slice(0, 246)}: webhook`,
      status: input.status ?? 'DRAFT',
      format: input.format ?? 'JSON',
      sampleBody: input.body ?? null,
      verification: signed
        ? {
            preset: 'HMAC',
            secret: input.hmacSecretKey ?? null,
            hmac: {
              algorithm: input.hmacAlgorithm ?? 'SHA256',
              header: input.hmacHeader ?? DEFAULT_FLOW_HMAC_HEADER,
              encoding: input.hmacEncoding ?? 'HEX',
            },
          }
        : { preset: 'NONE' },
    };
    return asWebhookInput(() => this.sources.create(actor, source, flow.id));
  }

  /**
   * A merge patch of a webhook: a new hmacSecretKey becomes the current secret (the old one keeps
   * verifying for the rotation grace); hmacAlgorithm or hmacSecretKey null turns signing off.
   */
  async updateWebhook(actor: Actor, id: string, raw: UpdateFlowWebhookInput): Promise<InboundSource> {
    refuseNulls(raw, FLOW_WEBHOOK_REQUIRED_ON_UPDATE);
    const input = parse(updateFlowWebhookInput, raw);
    const webhook = await this.webhook(actor, id);
    const signed = webhook.verification.preset === 'HMAC';
    const unsigned = input.hmacAlgorithm === null || input.hmacSecretKey === null;
    // A null header or encoding goes back to its default.
    const hmac = {
      ...(input.hmacAlgorithm != null && { algorithm: input.hmacAlgorithm }),
      ...(input.hmacHeader !== undefined && { header: input.hmacHeader ?? DEFAULT_FLOW_HMAC_HEADER }),
      ...(input.hmacEncoding !== undefined && { encoding: input.hmacEncoding ?? 'HEX' }),
    };
    const changesSigning = Object.keys(hmac).length > 0 || input.hmacSecretKey != null;
    if (unsigned && changesSigning) {
      throw new InvalidInputError([
        {
          path: ['input', 'hmacSecretKey'],
          message: 'null turns signing off: give no other hmac field with it',
        },
      ]);
    }
    const verification: UpdateInboundSourceInput['verification'] = unsigned
      ? { preset: 'NONE' }
      : !changesSigning
        ? undefined
        : signed
          ? { secret: input.hmacSecretKey ?? null, ...(Object.keys(hmac).length > 0 && { hmac }) }
          : {
              preset: 'HMAC',
              secret: input.hmacSecretKey ?? null,
              hmac: { algorithm: 'SHA256', header: DEFAULT_FLOW_HMAC_HEADER, encoding: 'HEX', ...hmac },
            };
    const patch: UpdateInboundSourceInput = {
      ...(input.name != null && { name: input.name }),
      ...(input.status != null && { status: input.status }),
      ...(input.format != null && { format: input.format }),
      ...(input.body !== undefined && { sampleBody: input.body }),
      ...(verification && { verification }),
    };
    return asWebhookInput(() => this.sources.update(actor, webhook.id, patch));
  }

  async deleteWebhook(actor: Actor, id: string): Promise<InboundSource> {
    const webhook = await this.webhook(actor, id);
    return this.sources.delete(actor, webhook.id);
  }

  /** A flow's webhook by its id; NotFound for a source that is no flow's. */
  async webhook(actor: Actor, id: string): Promise<InboundSource> {
    const [source] = await this.sources.getMany(actor, [id]);
    if (!source?.flowId) throw new NotFoundError('FlowWebhook', id);
    return source;
  }

  /**
   * What a request would become at the flow, stored nowhere: verified with the webhook's secrets
   * when one is given (its format too), parsed, filtered, mapped, its event type checked against
   * the catalog. Judged as if DEPLOYED; `deployed` says whether a request now would be.
   */
  async test(actor: Actor, raw: TestFlowInput): Promise<FlowTest> {
    const input = parse(testFlowInput, raw);
    const flow = await this.find(actor, input.flowId);
    if (!flow) throw new NotFoundError('Flow', input.flowId);
    const source = input.webhookId ? await this.webhookOf(actor, flow, input.webhookId) : null;
    const body = input.body != null ? Buffer.from(input.body) : Buffer.from(input.bodyBase64!, 'base64');
    const maxBytes = Math.min(source?.maxBytes ?? this.maxBytes, this.maxBytes);
    if (body.length > maxBytes) {
      throw new InvalidInputError([
        { path: ['input', 'body'], message: `must be at most ${maxBytes} bytes, as the webhook takes` },
      ]);
    }
    // As node:http hands them over: lower-case names, a repeated header joined (Set-Cookie aside).
    const headers = Object.fromEntries(
      Object.entries(input.headers ?? {}).map(([name, value]) => {
        const lower = name.toLowerCase();
        return [lower, Array.isArray(value) && lower !== 'set-cookie' ? value.join(', ') : value];
      }),
    );
    const format: InboundFormat = source?.format ?? input.format ?? 'JSON';
    const contentType = headers['content-type'];
    const target = {
      // Without a webhook, the flow is judged through a stand-in with no verification.
      source: source ?? standIn(format),
      flow,
      secrets: source ? this.sources.openSecrets(source) : [],
    };
    const { status } = effectiveStatus(target);
    const judgement: Omit<FlowTest, 'deployed' | 'outcomeNow'> = acceptsContentType(
      format,
      typeof contentType === 'string' ? contentType : undefined,
    )
      ? await judge(
          { eventTypes: this.eventTypes },
          target,
          { headers, body, receivedAt: new Date() },
          { verify: !!source, dedupe: false, asDeployed: true },
        )
      : {
          outcome: 'UNSUPPORTED_MEDIA_TYPE',
          reason: `${String(contentType ?? 'no Content-Type')} does not fit the format ${format}`,
          verification: { status: 'NOT_CHECKED', detail: null },
          parse: { status: 'NOT_PARSED', error: null },
          idempotencyKey: null,
          dedupeKey: null,
          event: null,
        };
    // In the receiver's order: INACTIVE is refused first, a wrong type or signature next.
    const refused = judgement.outcome === 'UNSUPPORTED_MEDIA_TYPE' || judgement.outcome === 'UNAUTHORIZED';
    const outcomeNow =
      status === 'INACTIVE' ? 'NOT_FOUND' : refused || status === 'DEPLOYED' ? judgement.outcome : 'RECORDED';
    return { ...judgement, deployed: status === 'DEPLOYED', outcomeNow };
  }

  private async webhookOf(actor: Actor, flow: Flow, id: string): Promise<InboundSource> {
    const source = await tenantEm(this.orm, actor).findOne(
      InboundSourceEntity,
      z.uuid().safeParse(id).success ? { id, flowId: flow.id } : { id: { $in: [] } },
      { populate: ['secrets'] },
    );
    if (!source) throw new NotFoundError('FlowWebhook', id);
    return source;
  }

  /**
   * Validates the filter and mapping documents, and what needs the catalog: a fixed event type,
   * with the parts the mapping fixes over it (parts read from the request are checked per request).
   */
  private async check(
    actor: Actor,
    input: { eventType?: EventTypeSelector | null; filter?: unknown; mapping?: unknown },
  ): Promise<void> {
    const problems: FieldProblem[] = [];
    if (input.filter != null) problems.push(...filterProblems(input.filter, ['input', 'filter']));
    const mappingWrong = input.mapping == null ? [] : mappingProblems(input.mapping, ['input', 'mapping']);
    problems.push(...mappingWrong);
    if (input.eventType && 'fixed' in input.eventType) {
      const { fixed } = input.eventType;
      // A mapping that is not one fixes no part: the type is checked as given.
      const meta = mappingWrong?.length
        ? {}
        : ((input.mapping as FlowMapping | null | undefined)?.meta ?? {});
      const fromRequest = Object.values(meta).some((part) => 'field' in part);
      const mapped = fromRequest
        ? null
        : mapMeta({ meta }, parseEventTypeName(fixed), { parsed: null, headers: {} });
      const type = mapped && !('problem' in mapped) ? eventTypeOf(mapped) : fixed;
      const path = type === fixed ? ['input', 'eventType', 'fixed'] : ['input', 'mapping', 'meta'];
      const unknown = await this.eventTypes.checkSubscriptions(actor, [type]);
      problems.push(...unknown.map((p) => ({ path, message: p.message })));
    }
    if (problems.length > 0) throw new InvalidInputError(problems);
  }

  private async change(actor: Actor, id: string, action: string, apply: (flow: Flow) => void): Promise<Flow> {
    const flow = await this.audit.transact(actor, async (tx, record) => {
      const flow = await this.modifiable(tx, id);
      const before = { ...flow };
      apply(flow);
      const entry = flowEntry(action, before, flow);
      const changed = Object.keys((entry.metadata as { changes: object }).changes).length > 0;
      if (changed || action === 'flow.deployed') record(entry);
      return flow;
    });
    await this.sources.flowChanged(flow.id);
    return flow;
  }

  private async modifiable(tx: EntityManager, id: string): Promise<Flow> {
    const flow = z.uuid().safeParse(id).success
      ? await tx.findOne(FlowEntity, { id }, { lockMode: LockMode.PESSIMISTIC_WRITE })
      : null;
    if (!flow) throw new NotFoundError('Flow', id);
    return flow;
  }
}

/** A status change; becoming DEPLOYED records when. */
function setStatus(flow: Flow, status: FlowStatus): void {
  if (status === 'DEPLOYED' && flow.status !== 'DEPLOYED') flow.deployedAt = new Date();
  flow.status = status;
}

/** Runs a source change for a webhook, its problems named by the webhook's fields. */
async function asWebhookInput<T>(change: () => Promise<T>): Promise<T> {
  try {
    return await change();
  } catch (error) {
    if (!(error instanceof InvalidInputError)) throw error;
    throw new InvalidInputError(
      error.problems.map((problem) => {
        const path = WEBHOOK_PATHS[problem.path.join('.')];
        return path ? { ...problem, path: path.split('.') } : problem;
      }),
    );
  }
}

/** A source standing in for a flow's webhook in testFlow: unverified, of the format asked. */
function standIn(format: InboundFormat): JudgedSource {
  return {
    status: 'DEPLOYED',
    format,
    verification: { preset: 'NONE', hmac: null, apiKeyHeader: null },
    idempotency: null,
    eventType: null,
    flowId: null,
  };
}

function flowEntry(action: string, before: Flow | null, after: Flow | null): AuditEntryInput {
  const subject = (after ?? before)!;
  return {
    action,
    relationName: 'Flow',
    relationId: subject.id,
    related: { type: 'Flow', id: subject.id, name: subject.name },
    metadata: { changes: changes(before, after, AUDITED) },
  };
}
