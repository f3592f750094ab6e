import { EventEmitter } from 'node:events';
import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { z } from 'zod';
import { sql } from 'kysely';
import type { EntityManager, Orm } from '../db/orm.ts';
import { findByIds } from '../db/by-ids.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import { MAX_URL_LENGTH, refuseUrl, type EndpointPolicy, type Resolve } from '../net/ssrf.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import {
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  MissingScopeError,
  NotFoundError,
  PlanLimitError,
  type FieldProblem,
} from '../errors.ts';
import { parseEventTypeName, type EventTypeService } from '../event-types/event-type.service.ts';
import type { Recorder } from '../audit/audit.service.ts';
import { AppInstallationEntity } from '../apps/app.entity.ts';
import { covers, scopeFor } from '../apps/data-scopes.ts';
import { containing, parse, refuseNulls, text } from '../input.ts';
import { findPage, type Page, type PageRequest } from '../pagination.ts';
import type { Actor, ApiClient } from '../tenancy/actor.ts';
import { TenantEntity } from '../tenancy/tenant.entity.ts';
import type { SecretBox } from '../util/secret-box.ts';
import { newWebhookSecret } from './webhook-secret.ts';
import { changesAudited, webhookEntry } from './webhook-audit.ts';
import { WebhookEntity, type Webhook } from './webhook.entity.ts';
import { eventPatternsMatching, patternMatches, subscriptionPattern } from './event-patterns.ts';

const subscribedEvents = z.array(subscriptionPattern).min(1, 'subscribe to at least one event type').max(100);

export const createWebhookInput = z.object({
  name: text(255).nullish(),
  url: text(4096),
  subscribedEvents,
  externalId: text(255).nullish(),
  isActive: z.boolean().nullish(),
});
export type CreateWebhookInput = z.input<typeof createWebhookInput>;

/** JSON Merge Patch: an omitted field stays, null clears a nullable field, null on a required one is refused. */
export const updateWebhookInput = z.object({
  name: text(255).nullish(),
  url: text(4096).nullish(),
  subscribedEvents: subscribedEvents.nullish(),
  externalId: text(255).nullish(),
  isActive: z.boolean().nullish(),
  disabledReason: text(1000).nullish(),
});
export type UpdateWebhookInput = z.input<typeof updateWebhookInput>;
const REQUIRED = ['url', 'subscribedEvents', 'isActive'] as const;

export interface WebhookFilter {
  isActive?: boolean | null;
  eventType?: string | null;
  managedBy?: ApiClient | null;
  externalId?: string | null;
  search?: string | null;
}

export interface CreateWebhookResult {
  webhook: Webhook;
  /** The signing secret: only when created, never on a replay. */
  secret: string | null;
  created: boolean;
}

export class WebhookService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly eventTypes: EventTypeService;
  private readonly box: SecretBox;
  private readonly policy: EndpointPolicy;
  private readonly resolve: Resolve | undefined;
  private readonly rotationGraceMs: number;
  /** Emits 'changed' with a tenant id after any webhook of it changed (caches listen). */
  readonly events = new EventEmitter<{ changed: [tenantId: string] }>();

  constructor(
    deps: { orm: Orm; audit: AuditService; eventTypes: EventTypeService; box: SecretBox },
    options: { policy: EndpointPolicy; rotationGraceMs: number; resolve?: Resolve },
  ) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.eventTypes = deps.eventTypes;
    this.box = deps.box;
    this.policy = options.policy;
    this.rotationGraceMs = options.rotationGraceMs;
    this.resolve = options.resolve;
  }

  /**
   * Creates a webhook managed by the caller's client. With an externalId it is idempotent per
   * tenant and client: a replay, or the loser of a race, gets the existing webhook, no secret.
   */
  async create(actor: Actor, raw: CreateWebhookInput): Promise<CreateWebhookResult> {
    const input = parse(createWebhookInput, raw);
    if (input.externalId) {
      const existing = await this.findByExternalId(actor, input.externalId);
      if (existing) return { webhook: existing, secret: null, created: false };
    }
    const { url } = await this.check(actor, { url: input.url, subscribedEvents: input.subscribedEvents });
    const secret = newWebhookSecret();
    try {
      const result = await this.audit.transact(actor, async (tx, record) => {
        await this.lockTenant(tx, actor);
        // Under the tenant lock: a request that raced this one may have created it meanwhile.
        const replay = input.externalId
          ? await tx.findOne(WebhookEntity, { managedBy: actor.client, externalId: input.externalId })
          : null;
        if (replay) return { webhook: replay, created: false };
        const webhook = await this.insertIn(tx, record, actor, {
          name: input.name ?? null,
          url: url!,
          subscribedEvents: input.subscribedEvents,
          externalId: input.externalId ?? null,
          isActive: input.isActive ?? true,
          secret,
        });
        return { webhook, created: true };
      });
      this.changed(actor);
      return { webhook: result.webhook, secret: result.created ? secret : null, created: result.created };
    } catch (error) {
      if (!(error instanceof UniqueConstraintViolationException) || !input.externalId) throw error;
      const existing = await this.findByExternalId(actor, input.externalId);
      if (!existing) throw error;
      return { webhook: existing, secret: null, created: false };
    }
  }

  async update(actor: Actor, id: string, raw: UpdateWebhookInput): Promise<Webhook> {
    refuseNulls(raw, REQUIRED);
    const input = parse(updateWebhookInput, raw);
    const { url } = await this.check(actor, {
      url: input.url ?? undefined,
      subscribedEvents: input.subscribedEvents ?? undefined,
    });
    // An app's webhook keeps within the app's scopes, whoever changes it (a dashboard too).
    const held = input.subscribedEvents ? await this.find(actor, id) : null;
    if (held?.dataScopes && input.subscribedEvents) {
      await this.gate(new Set(held.dataScopes), input.subscribedEvents, ['input', 'subscribedEvents']);
    }
    return this.change(actor, id, 'webhook.updated', (webhook) => {
      if (input.name !== undefined) webhook.name = input.name;
      if (url) webhook.url = url;
      if (input.subscribedEvents != null) webhook.subscribedEvents = [...new Set(input.subscribedEvents)];
      if (input.externalId !== undefined) webhook.externalId = input.externalId;
      if (input.isActive != null) this.activate(webhook, input.isActive, `disabled by ${actor.name}`);
      if (input.disabledReason !== undefined) {
        if (webhook.isActive) {
          throw new InvalidInputError([
            { path: ['input', 'disabledReason'], message: 'applies only to a disabled webhook' },
          ]);
        }
        webhook.disabledReason = input.disabledReason;
      }
    });
  }

  /** Enables or disables; disabling records when and why, enabling clears both. */
  async setActive(actor: Actor, id: string, active: boolean, reason?: string | null): Promise<Webhook> {
    const why = reason == null ? `disabled by ${actor.name}` : parse(text(1000), reason);
    return this.change(actor, id, active ? 'webhook.enabled' : 'webhook.disabled', (webhook) => {
      this.activate(webhook, active, why);
      // Disabling a disabled webhook again updates why.
      if (!active && reason != null) webhook.disabledReason = why;
    });
  }

  async delete(actor: Actor, id: string): Promise<Webhook> {
    const webhook = await this.audit.transact(actor, async (tx, record) => {
      const webhook = await this.modifiable(tx, actor, id);
      tx.remove(webhook);
      record(webhookEntry('webhook.deleted', webhook, null));
      return webhook;
    });
    this.changed(actor);
    return webhook;
  }

  /**
   * A new secret, returned once. The old one keeps signing deliveries (next to the new) for the
   * grace period, so receivers can switch without dropping any.
   */
  async rotateSecret(
    actor: Actor,
    id: string,
    graceMs = this.rotationGraceMs,
  ): Promise<{ webhook: Webhook; secret: string }> {
    const secret = newWebhookSecret();
    const webhook = await this.audit.transact(actor, async (tx, record) => {
      const webhook = await this.modifiable(tx, actor, id, ['secret']);
      if (webhook.previousSecretExpiresAt && webhook.previousSecretExpiresAt > new Date()) {
        // A second rotation now would drop the secret receivers may still be on.
        throw new ConflictError(
          `the previous rotation's grace period runs until ${webhook.previousSecretExpiresAt.toISOString()}`,
        );
      }
      webhook.previousSecret = webhook.secret;
      webhook.previousSecretExpiresAt = new Date(Date.now() + graceMs);
      webhook.secret = this.box.seal(secret);
      record({
        action: 'webhook.secret_rotated',
        relationName: 'Webhook',
        relationId: webhook.id,
        metadata: {
          changes: changes({ secret: 'old' }, { secret: 'new' }, ['secret']),
          previousSecretExpiresAt: webhook.previousSecretExpiresAt.toISOString(),
        },
      });
      return webhook;
    });
    return { webhook, secret };
  }

  /**
   * Creates a webhook in the caller's transaction, which holds the tenant's lock (lockTenant),
   * within the plan. An app's token (or an app's installation acting) makes an app's webhook:
   * kept with the installation and its data scopes, which filter its payloads.
   */
  async insertIn(
    tx: EntityManager,
    record: Recorder,
    actor: Actor,
    fields: Pick<Webhook, 'name' | 'url' | 'subscribedEvents' | 'externalId' | 'isActive'> & {
      secret: string;
      manifestKey?: string;
    },
  ): Promise<Webhook> {
    await this.withinPlan(tx, actor);
    // Under the tenant lock, which uninstalling takes too: no webhook outlives its app.
    if (
      actor.appInstallationId &&
      !(await tx.findOne(AppInstallationEntity, { id: actor.appInstallationId }))
    ) {
      throw new NotFoundError('AppInstallation', actor.appInstallationId);
    }
    const webhook = tx.create(WebhookEntity, {
      tenantId: actor.tenantId,
      name: fields.name,
      url: fields.url,
      subscribedEvents: [...new Set(fields.subscribedEvents)],
      externalId: fields.externalId,
      managedBy: actor.client,
      appInstallationId: actor.appInstallationId,
      manifestKey: fields.manifestKey ?? null,
      dataScopes: actor.dataScopes ? [...actor.dataScopes] : null,
      isActive: fields.isActive,
      disabledAt: fields.isActive ? null : new Date(),
      disabledReason: fields.isActive ? null : `created inactive by ${actor.name}`,
      secret: this.box.seal(fields.secret),
    });
    await tx.flush();
    record(webhookEntry('webhook.created', null, webhook));
    return webhook;
  }

  /** Changes a webhook in the caller's transaction (an app's upgrade), keeping its id, secret and log. */
  updateIn(
    record: Recorder,
    webhook: Webhook,
    patch: Partial<Pick<Webhook, 'name' | 'url' | 'subscribedEvents' | 'dataScopes'>>,
  ): void {
    const before = { ...webhook };
    if (patch.name !== undefined) webhook.name = patch.name;
    if (patch.url !== undefined) webhook.url = patch.url;
    if (patch.subscribedEvents !== undefined) webhook.subscribedEvents = [...new Set(patch.subscribedEvents)];
    if (patch.dataScopes !== undefined) webhook.dataScopes = patch.dataScopes;
    if (changesAudited(before, webhook)) record(webhookEntry('webhook.updated', before, webhook));
  }

  /** Deletes a webhook in the caller's transaction. */
  removeIn(tx: EntityManager, record: Recorder, webhook: Webhook): void {
    tx.remove(webhook);
    record(webhookEntry('webhook.deleted', webhook, null));
  }

  /** Tells the caches that the tenant's webhooks changed, once the caller's transaction committed. */
  changedFor(tenantId: string): void {
    this.events.emit('changed', tenantId);
  }

  /** Locks the tenant's row: creates in the transaction then cannot overrun the plan. */
  async lockTenantIn(tx: EntityManager, tenantId: string): Promise<void> {
    await tx.findOneOrFail(TenantEntity, { id: tenantId }, { lockMode: LockMode.PESSIMISTIC_WRITE });
  }

  /**
   * Checks a webhook's URL and events as create does, problems named under `at`: for an app's
   * manifest, `['input', 'manifest', 'webhooks', '0']`.
   */
  async checkFor(
    actor: Actor,
    input: { url: string; subscribedEvents: string[] },
    at: string[],
  ): Promise<{ url: string }> {
    const { url } = await this.check(actor, input, at);
    return { url: url! };
  }

  /**
   * A webhook the actor may read: any of its tenant's for a dashboard token, only those its own
   * client manages for an integration's (as FlowEstate scopes its list to the calling client).
   */
  async find(actor: Actor, id: string): Promise<Webhook | null> {
    if (!z.uuid().safeParse(id).success) return null;
    const webhook = await tenantEm(this.orm, actor).findOne(WebhookEntity, { id });
    return webhook && readable(actor, webhook) ? webhook : null;
  }

  async getMany(actor: Actor, ids: readonly string[]): Promise<(Webhook | null)[]> {
    const rows = await findByIds(tenantEm(this.orm, actor), WebhookEntity, ids);
    return rows.map((webhook) => (webhook && readable(actor, webhook) ? webhook : null));
  }

  /** Webhooks of the actor's tenant it may read (see find), newest first. */
  async list(actor: Actor, filter: WebhookFilter, page: PageRequest): Promise<Page<Webhook>> {
    const like = filter.search ? containing(filter.search) : null;
    const { isActive, managedBy, externalId, eventType } = filter;
    const client = actor.client === 'DASHBOARD' ? null : actor.client;
    const installation = actor.client === 'APP' ? actor.appInstallationId : null;
    return findPage(tenantEm(this.orm, actor), WebhookEntity, page, (query) =>
      query
        .$if(!!client, (q) => q.where('managed_by', '=', client!))
        .$if(actor.client === 'APP', (q) => q.where('app_installation_id', '=', installation))
        .$if(isActive != null, (q) => q.where('is_active', '=', isActive!))
        .$if(!!managedBy, (q) => q.where('managed_by', '=', managedBy!))
        .$if(!!externalId, (q) => q.where('external_id', '=', externalId!))
        .$if(!!eventType, (q) =>
          q.where('subscribed_events', '&&', sql<string[]>`${eventPatternsMatching(eventType!)}::text[]`),
        )
        .$if(!!like, (q) => q.where((eb) => eb.or([eb('name', 'ilike', like!), eb('url', 'ilike', like!)]))),
    );
  }

  /** Validates what needs I/O: the URL against the endpoint policy, the events against the catalog. */
  private async check(
    actor: Actor,
    input: { url?: string; subscribedEvents?: string[] },
    at: string[] = ['input'],
  ): Promise<{ url: string | undefined }> {
    const problems: FieldProblem[] = [];
    // Stored as the parser normalised it: what was checked is what will be called.
    let url: string | undefined;
    if (input.url !== undefined) {
      const refused = await refuseUrl(input.url, this.policy, this.resolve);
      if (refused) problems.push({ path: [...at, 'url'], message: refused });
      else url = new URL(input.url).href;
      if (url && url.length > MAX_URL_LENGTH) {
        problems.push({ path: [...at, 'url'], message: `must be at most ${MAX_URL_LENGTH} characters` });
      }
    }
    if (input.subscribedEvents) {
      problems.push(
        ...(await this.eventTypes.checkSubscriptions(actor, input.subscribedEvents)).map((p) => ({
          path: [...at, 'subscribedEvents', ...p.path],
          message: p.message,
        })),
      );
    }
    if (problems.length > 0) throw new InvalidInputError(problems);
    if (actor.dataScopes && input.subscribedEvents) {
      await this.gate(actor.dataScopes, input.subscribedEvents, [...at, 'subscribedEvents']);
    }
    return { url };
  }

  /**
   * An app receives only events its scopes cover: every catalog type a subscription matches must
   * be of a module and model the app declares (Flowlu's scope enforcement for webhooks).
   */
  private async gate(scopes: ReadonlySet<string>, patterns: readonly string[], at: string[]): Promise<void> {
    const types = [...(await this.eventTypes.types()).values()];
    for (const [index, pattern] of patterns.entries()) {
      for (const type of types) {
        if (!patternMatches(pattern, type.name)) continue;
        const meta = parseEventTypeName(type.name);
        if (!covers(scopes, meta))
          throw new MissingScopeError(scopeFor(meta), type.name, [...at, String(index)]);
      }
    }
  }

  private async change(
    actor: Actor,
    id: string,
    action: string,
    apply: (webhook: Webhook) => void,
  ): Promise<Webhook> {
    try {
      const webhook = await this.audit.transact(actor, async (tx, record) => {
        const webhook = await this.modifiable(tx, actor, id);
        const before = { ...webhook };
        apply(webhook);
        if (changesAudited(before, webhook)) record(webhookEntry(action, before, webhook));
        return webhook;
      });
      this.changed(actor);
      return webhook;
    } catch (error) {
      if (!(error instanceof UniqueConstraintViolationException)) throw error;
      throw new ConflictError('another webhook of this client already has this externalId');
    }
  }

  private changed(actor: Actor): void {
    this.events.emit('changed', actor.tenantId);
  }

  private activate(webhook: Webhook, active: boolean, reason: string): void {
    if (webhook.isActive === active) return;
    webhook.isActive = active;
    webhook.disabledAt = active ? null : new Date();
    webhook.disabledReason = active ? null : reason;
    // Enabled again: auto-disable counts failures from now, not from before.
    if (active) webhook.failingSince = null;
  }

  /** The webhook, if the actor may change it: DASHBOARD-managed ones are off limits to integrations. */
  private async modifiable(
    tx: EntityManager,
    actor: Actor,
    id: string,
    populate: 'secret'[] = [],
  ): Promise<Webhook> {
    const webhook = z.uuid().safeParse(id).success
      ? await tx.findOne(WebhookEntity, { id }, { populate })
      : null;
    if (!webhook) throw new NotFoundError('Webhook', id);
    if (webhook.managedBy === 'DASHBOARD' && actor.client !== 'DASHBOARD') {
      throw new ForbiddenError('this webhook is managed from the dashboard; integrations cannot change it');
    }
    // Another integration's or another app's webhook is none of this token's business.
    if (!readable(actor, webhook)) throw new NotFoundError('Webhook', id);
    return webhook;
  }

  /** Creates wait on the tenant row, so two of them cannot both take the last slot of the plan. */
  private lockTenant(tx: EntityManager, actor: Actor): Promise<void> {
    return this.lockTenantIn(tx, actor.tenantId);
  }

  private async withinPlan(tx: EntityManager, actor: Actor): Promise<void> {
    const tenant = await tx.findOneOrFail(TenantEntity, { id: actor.tenantId });
    const count = await tx.count(WebhookEntity, {});
    if (count >= tenant.maxWebhooks) throw new PlanLimitError('webhooks', tenant.maxWebhooks);
  }

  private async findByExternalId(actor: Actor, externalId: string): Promise<Webhook | null> {
    const webhook = await tenantEm(this.orm, actor).findOne(WebhookEntity, {
      managedBy: actor.client,
      externalId,
    });
    return webhook && readable(actor, webhook) ? webhook : null;
  }
}

/**
 * A dashboard token reads every webhook of its tenant; an integration's, those its client
 * manages; an app's, only those of its own installation (apps do not see each other's).
 */
const readable = (actor: Actor, webhook: Webhook) =>
  actor.client === 'DASHBOARD' ||
  (webhook.managedBy === actor.client &&
    (actor.client !== 'APP' || webhook.appInstallationId === actor.appInstallationId));
