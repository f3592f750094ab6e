import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { LockMode } from '@mikro-orm/core';
import { z } from 'zod';
import type { AuditEntryInput, AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { findByIds } from '../db/by-ids.ts';
import type { EntityManager, Orm } from '../db/orm.ts';
import { sqlRows } from '../db/raw.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import { InvalidInputError, NotFoundError, type FieldProblem } from '../errors.ts';
import type { EventTypeService } from '../event-types/event-type.service.ts';
import { containing, parse, refuseNulls, text } from '../input.ts';
import { findPage, type Page, type PageRequest } from '../pagination.ts';
import type { Actor } from '../tenancy/actor.ts';
import type { SecretBox } from '../util/secret-box.ts';
import type { InboundFormat } from './body.ts';
import { FlowEntity } from './flow.entity.ts';
import type { verificationField } from './inbound-source.input.ts';
import {
  createInboundSourceInput,
  REQUIRED_ON_UPDATE,
  templates,
  updateInboundSourceInput,
  type CreateInboundSourceInput,
  type UpdateInboundSourceInput,
} from './inbound-source.input.ts';
import {
  InboundSourceEntity,
  type EventTypeSelector,
  type InboundSource,
  type InboundSourceStatus,
  type SealedSecret,
} from './inbound-source.entity.ts';
import { secretProblem, verificationInput, type Verification } from './verification.ts';

/** The fields a source's audit entries record; `secret` marks a new secret, never its value. */
const AUDITED = [
  'name',
  'description',
  'status',
  'format',
  'verification',
  'eventType',
  'idempotency',
  'maxBytes',
  'allowedMethods',
  'allowedCidrs',
  'requestsPerSecond',
  'flowId',
  'secret',
] as const;
type Audited = Pick<InboundSource, 'id' | Exclude<(typeof AUDITED)[number], 'secret'>> & { secret?: string };

/** At most this many secrets verify at once (the current one and those in their grace period). */
const MAX_LIVE_SECRETS = 5;

export interface InboundSourceFilter {
  /** A flow's webhooks only. */
  flowId?: string | null;
  status?: InboundSourceStatus | null;
  format?: InboundFormat | null;
  search?: string | null;
}

export const sha256Hex = (value: string | Buffer): string => createHash('sha256').update(value).digest('hex');

/** The secret part of a source's URL: 32 random bytes, base64url. */
const newUrlToken = (): string => randomBytes(32).toString('base64url');

export class InboundSourceService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly eventTypes: EventTypeService;
  private readonly box: SecretBox;
  private readonly maxBytes: number;
  private readonly rotationGraceMs: number;
  /** Emits 'changed' with the url token hashes of a source that changed (the receiver's cache listens). */
  readonly events = new EventEmitter<{ changed: [hashes: string[]] }>();

  constructor(
    deps: { orm: Orm; audit: AuditService; eventTypes: EventTypeService; box: SecretBox },
    options: { maxBytes: number; rotationGraceMs: number },
  ) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.eventTypes = deps.eventTypes;
    this.box = deps.box;
    this.maxBytes = options.maxBytes;
    this.rotationGraceMs = options.rotationGraceMs;
  }

  /** A source of its own, or with `flowId` a webhook of that flow (its event type is the flow's). */
  async create(actor: Actor, raw: CreateInboundSourceInput, flowId?: string): Promise<InboundSource> {
    const input = parse(createInboundSourceInput, raw);
    const template = input.template ? templates[input.template] : null;
    const missing = (['name', 'eventType'] as const)
      .filter((field) => !input[field] && !template && !(flowId && field === 'eventType'))
      .map((field) => ({ path: ['input', field], message: 'required (or give a template)' }));
    if (missing.length > 0) throw new InvalidInputError(missing);
    if (flowId && input.eventType) throw flowEventType();
    const given = input.verification ?? {};
    const verification = this.verification({
      preset: given.preset ?? template?.verification.preset,
      hmac: given.preset ? given.hmac : merged(template?.verification.hmac, given.hmac),
      apiKeyHeader: given.apiKeyHeader,
    });
    const secret = this.secret(verification, given.secret ?? null, true);
    const eventType = flowId ? null : (input.eventType ?? template!.eventType);
    await this.check(actor, { eventType: eventType ?? undefined, maxBytes: input.maxBytes });
    const token = newUrlToken();
    const now = new Date();
    const source = await this.audit.transact(actor, async (tx, record) => {
      // Shared with others adding webhooks, exclusive of deleting the flow: no webhook outlives it.
      if (
        flowId &&
        !(await tx.findOne(FlowEntity, { id: flowId }, { lockMode: LockMode.PESSIMISTIC_READ }))
      ) {
        throw new NotFoundError('Flow', flowId);
      }
      const source = tx.create(InboundSourceEntity, {
        tenantId: actor.tenantId,
        name: input.name ?? template!.name,
        description: input.description ?? null,
        status: input.status ?? 'DRAFT',
        format: input.format ?? template?.format ?? 'JSON',
        sampleBody: input.sampleBody ?? null,
        verification,
        secrets: secret
          ? [{ sealed: this.box.seal(secret), createdAt: now.toISOString(), expiresAt: null }]
          : [],
        eventType,
        flowId: flowId ?? null,
        idempotency: input.idempotency ?? null,
        maxBytes: input.maxBytes ?? this.maxBytes,
        allowedMethods: input.allowedMethods ?? ['POST'],
        allowedCidrs: input.allowedCidrs ?? [],
        requestsPerSecond: input.requestsPerSecond ?? null,
        urlTokenHash: sha256Hex(token),
        urlToken: this.box.seal(token),
        previousUrlTokenHash: null,
        previousUrlTokenExpiresAt: null,
      });
      await tx.flush();
      record(sourceEntry('inbound_source.created', null, { ...source, secret: secret ? 'set' : undefined }));
      return source;
    });
    return source;
  }

  async update(actor: Actor, id: string, raw: UpdateInboundSourceInput): Promise<InboundSource> {
    refuseNulls(raw, REQUIRED_ON_UPDATE);
    const input = parse(updateInboundSourceInput, raw);
    await this.check(actor, { eventType: input.eventType ?? undefined, maxBytes: input.maxBytes });
    return this.change(actor, id, 'inbound_source.updated', (source) => {
      const before: Audited = { ...source };
      if (input.name != null) source.name = input.name;
      if (input.description !== undefined) source.description = input.description;
      if (input.status != null) source.status = input.status;
      if (input.format != null) source.format = input.format;
      if (input.sampleBody !== undefined) source.sampleBody = input.sampleBody;
      if (input.eventType != null) {
        if (source.flowId) throw flowEventType();
        source.eventType = input.eventType;
      }
      if (input.idempotency !== undefined) source.idempotency = input.idempotency;
      if (input.maxBytes != null) source.maxBytes = input.maxBytes;
      if (input.allowedMethods != null) source.allowedMethods = input.allowedMethods;
      if (input.allowedCidrs != null) source.allowedCidrs = input.allowedCidrs;
      if (input.requestsPerSecond !== undefined) source.requestsPerSecond = input.requestsPerSecond;
      if (input.verification) {
        const graceMs =
          input.secretGraceSeconds == null ? this.rotationGraceMs : input.secretGraceSeconds * 1000;
        before.secret = this.applyVerification(source, input.verification, graceMs);
      }
      return before;
    });
  }

  async delete(actor: Actor, id: string): Promise<InboundSource> {
    const source = await this.audit.transact(actor, async (tx, record) => {
      const source = await this.modifiable(tx, id);
      tx.remove(source);
      record(sourceEntry('inbound_source.deleted', source, null));
      return source;
    });
    this.changed(source);
    return source;
  }

  /** A new URL; the old one keeps working for the grace period, so senders can be moved over. */
  async rotateUrl(actor: Actor, id: string, graceMs = this.rotationGraceMs): Promise<InboundSource> {
    const token = newUrlToken();
    const source = await this.audit.transact(actor, async (tx, record) => {
      const source = await this.modifiable(tx, id);
      const before = { hash: source.urlTokenHash, previous: source.previousUrlTokenHash };
      source.previousUrlTokenHash = source.urlTokenHash;
      source.previousUrlTokenExpiresAt = new Date(Date.now() + graceMs);
      source.urlTokenHash = sha256Hex(token);
      source.urlToken = this.box.seal(token);
      record({
        action: 'inbound_source.url_rotated',
        relationName: 'InboundSource',
        relationId: source.id,
        related: { type: 'InboundSource', id: source.id, name: source.name },
        metadata: { previousUrlExpiresAt: source.previousUrlTokenExpiresAt.toISOString() },
      });
      return { source, stale: [before.hash, before.previous].filter((h): h is string => !!h) };
    });
    this.events.emit('changed', source.stale);
    return source.source;
  }

  /** The path senders post to: `/in/<token>`. */
  urlPath(source: InboundSource): string {
    return `/in/${this.box.open(source.urlToken)}`;
  }

  async find(actor: Actor, id: string): Promise<InboundSource | null> {
    if (!z.uuid().safeParse(id).success) return null;
    return tenantEm(this.orm, actor).findOne(InboundSourceEntity, { id });
  }

  getMany(actor: Actor, ids: readonly string[]): Promise<(InboundSource | null)[]> {
    return findByIds(tenantEm(this.orm, actor), InboundSourceEntity, ids);
  }

  list(actor: Actor, filter: InboundSourceFilter, page: PageRequest): Promise<Page<InboundSource>> {
    const search = filter.search == null ? null : parse(text(255), filter.search);
    const like = search ? containing(search) : null;
    return findPage(tenantEm(this.orm, actor), InboundSourceEntity, page, (query) =>
      query
        .$if(!!filter.flowId, (q) => q.where('flow_id', '=', filter.flowId!))
        .$if(!!filter.status, (q) => q.where('status', '=', filter.status!))
        .$if(!!filter.format, (q) => q.where('format', '=', filter.format!))
        .$if(!!like, (q) => q.where('name', 'ilike', like!)),
    );
  }

  /** The verification profile as given, checked, with its problems under input.verification. */
  private verification(raw: { preset?: unknown; hmac?: unknown; apiKeyHeader?: unknown }): Verification {
    if (raw.preset == null) {
      throw new InvalidInputError([
        { path: ['input', 'verification', 'preset'], message: 'required (or give a template)' },
      ]);
    }
    const hmac = raw.hmac && typeof raw.hmac === 'object' ? withoutNulls(raw.hmac) : raw.hmac;
    return parse(z.object({ verification: verificationInput }), { verification: { ...raw, hmac } })
      .verification;
  }

  /** The secret checked for the preset; `required` unless the preset takes none. */
  private secret(verification: Verification, secret: string | null, required: boolean): string | null {
    if (secret == null) {
      if (!required || verification.preset === 'NONE') return null;
      throw new InvalidInputError([
        { path: ['input', 'verification', 'secret'], message: `required for ${verification.preset}` },
      ]);
    }
    const problem = secretProblem(verification.preset, secret);
    if (problem)
      throw new InvalidInputError([{ path: ['input', 'verification', 'secret'], message: problem }]);
    return secret;
  }

  /**
   * A new verification: a new secret becomes the current one and the live ones keep verifying for
   * `graceMs` (rotation); a new preset needs its own secret, and drops the old preset's. Returns
   * what the audit records of the secret.
   */
  private applyVerification(
    source: InboundSource,
    given: z.output<typeof verificationField>,
    graceMs: number,
  ): string | undefined {
    const preset = given.preset ?? source.verification.preset;
    const presetChanged = preset !== source.verification.preset;
    const verification = this.verification({
      preset,
      // Merge patch: the settings given replace those held, a null one goes back to its default.
      hmac: presetChanged ? given.hmac : merged(source.verification.hmac, given.hmac),
      apiKeyHeader: given.apiKeyHeader ?? (presetChanged ? undefined : source.verification.apiKeyHeader),
    });
    const secret = this.secret(verification, given.secret ?? null, presetChanged);
    source.verification = verification;
    if (presetChanged) source.secrets = [];
    if (!secret) return presetChanged ? 'removed' : undefined;
    const now = new Date();
    const expiresAt = new Date(now.getTime() + graceMs).toISOString();
    const live = source.secrets
      .filter((s) => s.expiresAt === null || new Date(s.expiresAt) > now)
      .map((s): SealedSecret => ({ ...s, expiresAt: s.expiresAt ?? expiresAt }))
      .filter((s) => new Date(s.expiresAt!) > now)
      .slice(-(MAX_LIVE_SECRETS - 1));
    source.secrets = [
      ...live,
      { sealed: this.box.seal(secret), createdAt: now.toISOString(), expiresAt: null },
    ];
    return `rotated ${now.toISOString()}`;
  }

  /** The source's secrets, opened, the current one first, each with when it stops verifying. */
  openSecrets(source: Pick<InboundSource, 'secrets'>): { secret: string; expiresAt: number | null }[] {
    return source.secrets
      .map((s) => ({
        secret: this.box.open(s.sealed),
        expiresAt: s.expiresAt ? Date.parse(s.expiresAt) : null,
      }))
      .sort((a, b) => (b.expiresAt ?? Infinity) - (a.expiresAt ?? Infinity));
  }

  /** How many webhooks each flow has, in the order asked. */
  async webhookCounts(actor: Actor, flowIds: readonly string[]): Promise<number[]> {
    const rows = await sqlRows<{ flow_id: string; count: number }>(
      this.orm,
      `select flow_id, count(*)::int as count from inbound_sources
       where tenant_id = $1 and flow_id = any($2::uuid[]) group by flow_id`,
      [actor.tenantId, `{${flowIds.join(',')}}`],
    );
    const counts = new Map(rows.map((row) => [row.flow_id, row.count]));
    return flowIds.map((id) => counts.get(id) ?? 0);
  }

  /** Tells the receivers these sources changed or went, so they drop them. */
  forget(sources: readonly Pick<InboundSource, 'urlTokenHash' | 'previousUrlTokenHash'>[]): void {
    sources.forEach((source) => this.changed(source));
  }

  /** Tells the receivers that a flow's route or status changed, so they drop its webhooks. */
  async flowChanged(flowId: string): Promise<void> {
    const sources = await this.orm.em
      .fork()
      .find(
        InboundSourceEntity,
        { flowId },
        { fields: ['urlTokenHash', 'previousUrlTokenHash'], filters: false },
      );
    this.forget(sources);
  }

  /** Each source's verification and how many of its secrets verify now, in the order asked. */
  async verifications(
    actor: Actor,
    ids: readonly string[],
  ): Promise<({ verification: Verification; liveSecrets: number } | Error)[]> {
    const sources = await tenantEm(this.orm, actor).find(
      InboundSourceEntity,
      { id: { $in: [...ids] } },
      { populate: ['secrets'] },
    );
    const now = Date.now();
    const byId = new Map(
      sources.map((source) => [
        source.id,
        {
          verification: source.verification,
          liveSecrets: source.secrets.filter((s) => s.expiresAt === null || Date.parse(s.expiresAt) > now)
            .length,
        },
      ]),
    );
    return ids.map((id) => byId.get(id) ?? new NotFoundError('InboundSource', id));
  }

  /** Validates what needs the catalog and the configuration. */
  private async check(
    actor: Actor,
    input: { eventType?: EventTypeSelector; maxBytes?: number | null },
  ): Promise<void> {
    const problems: FieldProblem[] = [];
    if (input.eventType && 'fixed' in input.eventType) {
      problems.push(
        ...(await this.eventTypes.checkSubscriptions(actor, [input.eventType.fixed])).map((p) => ({
          path: ['input', 'eventType', 'fixed'],
          message: p.message,
        })),
      );
    }
    if (input.maxBytes != null && input.maxBytes > this.maxBytes) {
      problems.push({
        path: ['input', 'maxBytes'],
        message: `must be at most ${this.maxBytes} (HERALD_INBOUND_MAX_BYTES)`,
      });
    }
    if (problems.length > 0) throw new InvalidInputError(problems);
  }

  private async change(
    actor: Actor,
    id: string,
    action: string,
    apply: (source: InboundSource) => Audited,
  ): Promise<InboundSource> {
    const source = await this.audit.transact(actor, async (tx, record) => {
      const source = await this.modifiable(tx, id);
      // The snapshot taken before the change carries what became of the secret, for `after`.
      const before = apply(source);
      const after = { ...source, secret: before.secret };
      delete before.secret;
      const entry = sourceEntry(action, before, after);
      if (Object.keys((entry.metadata as { changes: object }).changes).length > 0) record(entry);
      return source;
    });
    this.changed(source);
    return source;
  }

  private changed(source: Pick<InboundSource, 'urlTokenHash' | 'previousUrlTokenHash'>): void {
    this.events.emit(
      'changed',
      [source.urlTokenHash, source.previousUrlTokenHash].filter((h): h is string => !!h),
    );
  }

  private async modifiable(tx: EntityManager, id: string): Promise<InboundSource> {
    const source = z.uuid().safeParse(id).success
      ? // Locked: two rotations at once must not both start from the same secrets or URL.
        await tx.findOne(
          InboundSourceEntity,
          { id },
          { populate: ['secrets'], lockMode: LockMode.PESSIMISTIC_WRITE },
        )
      : null;
    if (!source) throw new NotFoundError('InboundSource', id);
    return source;
  }
}

const flowEventType = () =>
  new InvalidInputError([
    { path: ['input', 'eventType'], message: "a flow's webhook takes its event type from its flow" },
  ]);

/** Settings held, with those given over them; either may be absent. */
function merged(
  held: object | null | undefined,
  given: object | null | undefined,
): object | null | undefined {
  return held && given ? { ...held, ...given } : (given ?? held);
}

const withoutNulls = (value: object) =>
  Object.fromEntries(Object.entries(value).filter(([, v]) => v !== null));

/** The audit entry of a source deleted with its flow. */
export const deletedSourceEntry = (source: InboundSource): AuditEntryInput =>
  sourceEntry('inbound_source.deleted', source, null);

function sourceEntry(action: string, before: Audited | null, after: Audited | null): AuditEntryInput {
  const subject = (after ?? before)!;
  return {
    action,
    relationName: 'InboundSource',
    relationId: subject.id,
    related: { type: 'InboundSource', id: subject.id, name: subject.name },
    metadata: { changes: changes(before, after, AUDITED) },
  };
}
