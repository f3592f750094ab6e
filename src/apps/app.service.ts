import { LockMode, UniqueConstraintViolationException } from '@mikro-orm/core';
import { z } from 'zod';
import type { AuditService, Recorder } from '../audit/audit.service.ts';
import { findByIds } from '../db/by-ids.ts';
import { newId } from '../db/ids.ts';
import type { EntityManager, Orm } from '../db/orm.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import {
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  type FieldProblem,
} from '../errors.ts';
import type { EventTypeService } from '../event-types/event-type.service.ts';
import { EventTypeEntity } from '../event-types/event-type.entity.ts';
import { EventEntity, EventOutboxEntity } from '../events/event.entity.ts';
import type { PublishedEvent } from '../events/published-event.ts';
import { parse, text } from '../input.ts';
import { findPage, findPlatformPage, type Page, type PageRequest } from '../pagination.ts';
import { demand, type Scope } from '../permissions.ts';
import { operatorActor, type Actor } from '../tenancy/actor.ts';
import { ApiTokenEntity } from '../tenancy/api-token.entity.ts';
import type { ApiTokenService } from '../tenancy/api-token.service.ts';
import type { AuthService } from '../tenancy/auth.service.ts';
import type { OutboxRelay } from '../util/outbox-relay.ts';
import { withoutSecrets } from '../webhooks/webhook-audit.ts';
import { newWebhookSecret } from '../webhooks/webhook-secret.ts';
import { WebhookEntity, type Webhook } from '../webhooks/webhook.entity.ts';
import type { WebhookService } from '../webhooks/webhook.service.ts';
import {
  AppEntity,
  AppInstallationEntity,
  AppVersionEntity,
  type App,
  type AppInstallation,
  type AppVersion,
  type Manifest,
} from './app.entity.ts';
import { catalogProblems, diff, manifestInput, type ManifestDiff } from './manifest.ts';

/** What an app's token may do in Herald: manage its own webhooks, read what they deliver. */
const APP_TOKEN_SCOPES: Scope[] = ['webhooks:read', 'webhooks:manage', 'events:read', 'deliveries:read'];

/** The lifecycle events every tenant's other webhooks may follow (Flowlu sends none). */
const LIFECYCLE_TYPES = ['app.installed', 'app.upgraded', 'app.uninstalled'] as const;

export const publishAppVersionInput = z.object({
  appKey: z
    .string()
    .max(100)
    .regex(/^[a-z0-9][a-z0-9-]*$/, 'must be lowercase letters, digits and -'),
  name: text(255),
  description: text(1000).nullish(),
  version: z
    .string()
    .max(50)
    .regex(/^[0-9A-Za-z][0-9A-Za-z.+-]*$/, 'must be a version such as 1.2.0'),
  manifest: z.unknown(),
});
export type PublishAppVersionInput = z.input<typeof publishAppVersionInput>;

/** A webhook an installation made, with its secret: shown to the installer once. */
export interface IssuedAppWebhook {
  key: string;
  webhook: Webhook;
  secret: string;
}

export interface Installed {
  installation: AppInstallation;
  /** The app's token, shown once. */
  token: string;
  webhooks: IssuedAppWebhook[];
}

export interface UpgradePreview extends ManifestDiff {
  from: AppVersion;
  to: AppVersion;
}

/**
 * Apps (Flowlu's custom apps): the operator publishes immutable versions, each with a manifest of
 * data scopes and webhooks; a tenant installs one, which issues the app its token and registers
 * the webhooks, and upgrades reconcile them by key in one transaction. An app's token and its
 * webhooks see only the events and fields its scopes allow.
 */
export class AppService {
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly eventTypes: EventTypeService;
  private readonly webhooks: WebhookService;
  private readonly tokens: ApiTokenService;
  private readonly auth: AuthService;
  private readonly events: Pick<OutboxRelay<PublishedEvent>, 'publish'>;
  private lifecycleTypesKnown = false;

  constructor(deps: {
    orm: Orm;
    audit: AuditService;
    eventTypes: EventTypeService;
    webhooks: WebhookService;
    tokens: ApiTokenService;
    auth: AuthService;
    events: Pick<OutboxRelay<PublishedEvent>, 'publish'>;
  }) {
    this.orm = deps.orm;
    this.audit = deps.audit;
    this.eventTypes = deps.eventTypes;
    this.webhooks = deps.webhooks;
    this.tokens = deps.tokens;
    this.auth = deps.auth;
    this.events = deps.events;
  }

  /**
   * Publishes a version of an app (the operator only), making the app on its first version. The
   * manifest is checked against the catalog and the endpoint policy; a version never changes.
   */
  async publishVersion(
    actor: Actor,
    raw: PublishAppVersionInput,
  ): Promise<{ app: App; version: AppVersion }> {
    demand(actor, 'apps.publish');
    const input = parse(publishAppVersionInput, raw);
    const manifest = parse(z.object({ manifest: manifestInput }), { manifest: input.manifest }).manifest;
    await this.knowLifecycleTypes();
    await this.check(actor, manifest, ['input', 'manifest']);
    try {
      return await this.audit.transact(actor, async (tx, record) => {
        const app =
          (await tx.findOne(AppEntity, { key: input.appKey }, { lockMode: LockMode.PESSIMISTIC_WRITE })) ??
          tx.create(AppEntity, {
            key: input.appKey,
            name: input.name,
            description: input.description ?? null,
          });
        app.name = input.name;
        if (input.description !== undefined) app.description = input.description;
        const version = tx.create(AppVersionEntity, { appId: app.id, version: input.version, manifest });
        await tx.flush();
        record({
          action: 'app.version_published',
          relationName: 'App',
          relationId: app.id,
          related: { type: 'App', id: app.id, name: app.name },
          metadata: {
            version: version.version,
            scopes: manifest.scopes,
            webhooks: manifest.webhooks.map((w) => ({ ...w, url: withoutSecrets(w.url) })),
          },
        });
        return { app, version };
      });
    } catch (error) {
      if (!(error instanceof UniqueConstraintViolationException)) throw error;
      throw new ConflictError(`${input.appKey} ${input.version} is published already: publish a new version`);
    }
  }

  listApps(_actor: Actor, page: PageRequest): Promise<Page<App>> {
    return findPlatformPage(this.orm.em.fork(), AppEntity, page, (query) => query);
  }

  getApps(_actor: Actor, ids: readonly string[]): Promise<(App | null)[]> {
    return findByIds(this.orm.em.fork(), AppEntity, ids);
  }

  /** An app's versions, newest first. */
  versions(appId: string): Promise<AppVersion[]> {
    return this.orm.em
      .fork()
      .find(AppVersionEntity, { appId }, { orderBy: { createdAt: 'desc', id: 'desc' } });
  }

  async getVersions(ids: readonly string[]): Promise<(AppVersion | null)[]> {
    return findByIds(this.orm.em.fork(), AppVersionEntity, ids);
  }

  listInstallations(actor: Actor, page: PageRequest): Promise<Page<AppInstallation>> {
    return findPage(tenantEm(this.orm, actor), AppInstallationEntity, page);
  }

  getInstallations(actor: Actor, ids: readonly string[]): Promise<(AppInstallation | null)[]> {
    return findByIds(tenantEm(this.orm, actor), AppInstallationEntity, ids);
  }

  /** The webhooks an installation made (its manifest's and its token's own). */
  installationWebhooks(actor: Actor, installationId: string): Promise<Webhook[]> {
    return tenantEm(this.orm, actor).find(
      WebhookEntity,
      { appInstallationId: installationId },
      { orderBy: { createdAt: 'asc', id: 'asc' } },
    );
  }

  /**
   * Installs a version (the newest by default) on the caller's tenant: the app's token holding the
   * manifest's scopes and the declared webhooks, in one transaction, audited, and announced as
   * `app.installed`.
   */
  async install(actor: Actor, appId: string, versionName?: string | null): Promise<Installed> {
    demand(actor, 'apps.manage');
    // A token may only grant what it holds: the app's token manages webhooks and reads events.
    const missing = APP_TOKEN_SCOPES.filter((scope) => !actor.scopes.has(scope));
    if (missing.length > 0) {
      throw new ForbiddenError(
        `installing an app grants its token ${missing.join(', ')}: this token does not hold them`,
      );
    }
    const { app, version } = await this.versionOf(appId, versionName);
    const installationId = newId();
    const appActor = this.appActor(actor, app, installationId, version.manifest);
    const urls = await this.checkWebhooks(appActor, version.manifest);
    await this.knowLifecycleTypes();
    const secrets = new Map(version.manifest.webhooks.map((webhook) => [webhook.key, newWebhookSecret()]));
    let event: PublishedEvent | undefined;
    try {
      const result = await this.audit.transact(actor, async (tx, record) => {
        await this.webhooks.lockTenantIn(tx, actor.tenantId);
        const { apiToken, token } = await this.tokens.issue(tx, record, actor.tenantId, {
          name: `app ${app.key}`,
          scopes: APP_TOKEN_SCOPES,
          client: 'APP',
          expiresAt: null,
          dataScopes: version.manifest.scopes,
          appInstallationId: installationId,
        });
        const installation = tx.create(AppInstallationEntity, {
          id: installationId,
          tenantId: actor.tenantId,
          appId: app.id,
          versionId: version.id,
          tokenId: apiToken.id,
        });
        await tx.flush();
        const made: IssuedAppWebhook[] = [];
        for (const declared of version.manifest.webhooks) {
          const secret = secrets.get(declared.key)!;
          const webhook = await this.webhooks.insertIn(
            tx,
            record,
            { ...appActor, tokenId: apiToken.id },
            {
              name: declared.name,
              url: urls.get(declared.key)!,
              subscribedEvents: declared.events,
              externalId: null,
              isActive: true,
              secret,
              manifestKey: declared.key,
            },
          );
          made.push({ key: declared.key, webhook, secret });
        }
        record(installationEntry('app.installed', app, installation, { version: version.version }));
        event = this.lifecycleEvent(tx, actor.tenantId, 'app.installed', {
          current: { ...appFields(app, installation), version: version.version },
          previous: null,
        });
        return { installation, token, webhooks: made };
      });
      this.announce(actor.tenantId, event);
      return result;
    } catch (error) {
      if (!(error instanceof UniqueConstraintViolationException)) throw error;
      throw new ConflictError(`${app.key} is installed already: upgrade it`);
    }
  }

  /** What upgrading to a version would change: webhooks added, removed and changed by key, scopes. */
  async previewUpgrade(actor: Actor, installationId: string, versionName: string): Promise<UpgradePreview> {
    demand(actor, 'apps.manage');
    const installation = await this.installation(tenantEm(this.orm, actor), installationId);
    const [from] = await this.getVersions([installation.versionId]);
    const { version: to } = await this.versionOf(installation.appId, versionName);
    if (to.id === from!.id) {
      throw new InvalidInputError([
        { path: ['input', 'version'], message: `${to.version} is installed already` },
      ]);
    }
    return { from: from!, to, ...diff(from!.manifest, to.manifest) };
  }

  /**
   * Moves an installation to another version in one transaction: webhooks no longer declared are
   * deleted, new ones created (their secrets returned once), changed ones updated in place keeping
   * their id, secret, delivery log and state; the token and every webhook of the app take the new
   * scopes. Audited and announced as `app.upgraded`.
   */
  async upgrade(
    actor: Actor,
    installationId: string,
    versionName: string,
  ): Promise<{ installation: AppInstallation; preview: UpgradePreview; webhooks: IssuedAppWebhook[] }> {
    const preview = await this.previewUpgrade(actor, installationId, versionName);
    const [app] = await this.getApps(actor, [preview.to.appId]);
    const appActor = this.appActor(actor, app!, installationId, preview.to.manifest);
    const urls = await this.checkWebhooks(appActor, preview.to.manifest);
    await this.knowLifecycleTypes();
    let event: PublishedEvent | undefined;
    const result = await this.audit.transact(actor, async (tx, record) => {
      await this.webhooks.lockTenantIn(tx, actor.tenantId);
      const installation = await this.installation(tx, installationId, LockMode.PESSIMISTIC_WRITE);
      if (installation.versionId !== preview.from.id) {
        throw new ConflictError('the installation changed meanwhile: preview the upgrade again');
      }
      const held = await tx.find(WebhookEntity, { appInstallationId: installation.id });
      const byKey = new Map(held.filter((w) => w.manifestKey).map((w) => [w.manifestKey!, w]));
      const scopes = preview.to.manifest.scopes;
      for (const removed of preview.removed) {
        const webhook = byKey.get(removed.key);
        if (webhook) this.webhooks.removeIn(tx, record, webhook);
      }
      for (const webhook of held) {
        const change = preview.changed.find((c) => c.key === webhook.manifestKey);
        if (preview.removed.some((r) => r.key === webhook.manifestKey)) continue;
        this.webhooks.updateIn(record, webhook, {
          dataScopes: scopes,
          ...(change && {
            name: change.after.name,
            url: urls.get(change.key)!,
            subscribedEvents: change.after.events,
          }),
        });
      }
      const made: IssuedAppWebhook[] = [];
      // The new ones, and any declared one the app's token deleted meanwhile.
      const missing = preview.to.manifest.webhooks.filter((declared) => !byKey.has(declared.key));
      for (const declared of missing) {
        const secret = newWebhookSecret();
        const webhook = await this.webhooks.insertIn(
          tx,
          record,
          { ...appActor, tokenId: installation.tokenId },
          {
            name: declared.name,
            url: urls.get(declared.key)!,
            subscribedEvents: declared.events,
            externalId: null,
            isActive: true,
            secret,
            manifestKey: declared.key,
          },
        );
        made.push({ key: declared.key, webhook, secret });
      }
      const token = await tx.findOneOrFail(ApiTokenEntity, { id: installation.tokenId });
      if (preview.scopesAdded.length > 0 || preview.scopesDropped.length > 0) {
        record({
          action: 'api_token.updated',
          relationName: 'ApiToken',
          relationId: token.id,
          related: { type: 'App', id: app!.id, name: app!.name },
          metadata: { changes: { dataScopes: { before: token.dataScopes, after: scopes } } },
        });
      }
      token.dataScopes = scopes;
      installation.versionId = preview.to.id;
      record(
        installationEntry('app.upgraded', app!, installation, {
          from: preview.from.version,
          to: preview.to.version,
          added: preview.added.map((w) => w.key),
          removed: preview.removed.map((w) => w.key),
          changed: preview.changed.map((c) => ({ key: c.key, fields: c.fields })),
          scopesAdded: preview.scopesAdded,
          scopesDropped: preview.scopesDropped,
        }),
      );
      event = this.lifecycleEvent(tx, actor.tenantId, 'app.upgraded', {
        current: { ...appFields(app!, installation), version: preview.to.version },
        previous: { ...appFields(app!, installation), version: preview.from.version },
      });
      return { installation, preview, webhooks: made };
    });
    // The cached token drops here (other processes within TOKEN_CACHE_TTL_MS), and open
    // subscriptions, which hold the scopes they began with, end and reconnect with the new ones.
    this.auth.revocations.emit('revoked', result.installation.tokenId, 'the app was upgraded: reconnect');
    this.announce(actor.tenantId, event);
    return result;
  }

  /** Removes the app's webhooks and revokes its token, in one transaction; announced as `app.uninstalled`. */
  async uninstall(actor: Actor, installationId: string): Promise<AppInstallation> {
    demand(actor, 'apps.manage');
    await this.knowLifecycleTypes();
    let event: PublishedEvent | undefined;
    const held = await this.installation(tenantEm(this.orm, actor), installationId);
    const [app] = await this.getApps(actor, [held.appId]);
    const installation = await this.audit.transact(actor, async (tx, record) => {
      // As creating a webhook does: none of the app's can be added while it goes.
      await this.webhooks.lockTenantIn(tx, actor.tenantId);
      const installation = await this.installation(tx, installationId, LockMode.PESSIMISTIC_WRITE);
      // Read in the transaction: embedded PGlite has one connection, which the transaction holds.
      const version = await tx.findOneOrFail(AppVersionEntity, { id: installation.versionId });
      for (const webhook of await tx.find(WebhookEntity, { appInstallationId: installation.id })) {
        this.webhooks.removeIn(tx, record, webhook);
      }
      const token = await tx.findOne(ApiTokenEntity, { id: installation.tokenId });
      if (token && !token.revokedAt) {
        token.revokedAt = new Date();
        record({
          action: 'api_token.revoked',
          relationName: 'ApiToken',
          relationId: token.id,
          related: { type: 'ApiToken', id: token.id, name: token.name },
          metadata: { reason: 'the app was uninstalled' },
        });
      }
      tx.remove(installation);
      record(installationEntry('app.uninstalled', app!, installation, { version: version.version }));
      event = this.lifecycleEvent(tx, actor.tenantId, 'app.uninstalled', {
        current: null,
        previous: { ...appFields(app!, installation), version: version.version },
      });
      return installation;
    });
    this.auth.revocations.emit('revoked', installation.tokenId, 'the app was uninstalled');
    this.announce(actor.tenantId, event);
    return installation;
  }

  /** The app's webhooks as its token would make them: URLs checked, events gated by its scopes. */
  private async checkWebhooks(appActor: Actor, manifest: Manifest): Promise<Map<string, string>> {
    const urls = new Map<string, string>();
    const problems: FieldProblem[] = [];
    for (const [i, webhook] of manifest.webhooks.entries()) {
      try {
        const { url } = await this.webhooks.checkFor(
          appActor,
          { url: webhook.url, subscribedEvents: webhook.events },
          ['manifest', 'webhooks', String(i)],
        );
        urls.set(webhook.key, url);
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        problems.push(...error.problems);
      }
    }
    if (problems.length > 0) throw new InvalidInputError(problems);
    return urls;
  }

  /** A manifest against the catalog and, for each webhook, the endpoint policy: every problem at once. */
  private async check(actor: Actor, manifest: Manifest, at: string[]): Promise<void> {
    const catalog = [...(await this.eventTypes.types()).values()];
    const problems = catalogProblems(manifest, catalog, at);
    for (const [i, webhook] of manifest.webhooks.entries()) {
      try {
        await this.webhooks.checkFor(actor, { url: webhook.url, subscribedEvents: webhook.events }, [
          ...at,
          'webhooks',
          String(i),
        ]);
      } catch (error) {
        if (!(error instanceof InvalidInputError)) throw error;
        // The catalog's problems with the events are reported above, with the scope they need.
        problems.push(...error.problems.filter((p) => p.path.at(at.length + 2) === 'url'));
      }
    }
    if (problems.length > 0) throw new InvalidInputError(problems);
  }

  private appActor(actor: Actor, app: App, installationId: string, manifest: Manifest): Actor {
    return {
      ...actor,
      kind: 'token',
      admin: false,
      name: `app ${app.key}`,
      client: 'APP',
      scopes: new Set(APP_TOKEN_SCOPES),
      dataScopes: new Set(manifest.scopes),
      appInstallationId: installationId,
      expiresAt: null,
    };
  }

  private async versionOf(
    appId: string,
    versionName?: string | null,
  ): Promise<{ app: App; version: AppVersion }> {
    const em = this.orm.em.fork();
    const app = z.uuid().safeParse(appId).success ? await em.findOne(AppEntity, { id: appId }) : null;
    if (!app) throw new NotFoundError('App', appId);
    const [version] = versionName
      ? await em.find(AppVersionEntity, { appId: app.id, version: versionName })
      : await em.find(
          AppVersionEntity,
          { appId: app.id },
          { orderBy: { createdAt: 'desc', id: 'desc' }, limit: 1 },
        );
    if (!version) throw new NotFoundError('AppVersion', `${app.key} ${versionName ?? '(none published)'}`);
    return { app, version };
  }

  private async installation(em: EntityManager, id: string, lockMode?: LockMode): Promise<AppInstallation> {
    const installation = z.uuid().safeParse(id).success
      ? await em.findOne(AppInstallationEntity, { id }, lockMode ? { lockMode } : {})
      : null;
    if (!installation) throw new NotFoundError('AppInstallation', id);
    return installation;
  }

  /**
   * The lifecycle event types are in the catalog, so that webhooks may subscribe to them: added
   * (by Herald, as the operator) when missing, never changed once there.
   */
  private async knowLifecycleTypes(): Promise<void> {
    if (this.lifecycleTypesKnown) return;
    const em = this.orm.em.fork();
    for (const name of LIFECYCLE_TYPES) {
      if (await em.findOne(EventTypeEntity, { name })) continue;
      try {
        await this.eventTypes.upsert(operatorActor('herald'), {
          name,
          group: 'Apps',
          description: `An app was ${name.split('.')[1]} on the tenant.`,
        });
      } catch (error) {
        // Another process added it meanwhile.
        if (!(error instanceof UniqueConstraintViolationException)) throw error;
      }
    }
    this.lifecycleTypesKnown = true;
  }

  /** A lifecycle event written with its outbox entry in the caller's transaction. */
  private lifecycleEvent(
    tx: EntityManager,
    tenantId: string,
    type: (typeof LIFECYCLE_TYPES)[number],
    payload: { current: unknown; previous: unknown },
  ): PublishedEvent {
    const id = newId();
    const [model, action] = type.split('.') as [string, string];
    const event: PublishedEvent = {
      id,
      tenantId,
      type,
      meta: { module: null, model, action },
      current: payload.current,
      previous: payload.previous,
      occurredAt: new Date(),
      idempotencyKey: id,
    };
    tx.create(EventEntity, {
      id,
      tenantId,
      type,
      module: null,
      model,
      action,
      current: payload.current,
      previous: payload.previous,
      occurredAt: event.occurredAt,
      idempotencyKey: id,
    });
    tx.create(EventOutboxEntity, { eventId: id });
    return event;
  }

  /** After commit: the webhook caches drop the tenant's, and the lifecycle event goes to the stream. */
  private announce(tenantId: string, event: PublishedEvent | undefined): void {
    this.webhooks.changedFor(tenantId);
    if (event) void this.events.publish([event]);
  }
}

const appFields = (app: App, installation: AppInstallation) => ({
  appId: app.id,
  appKey: app.key,
  appName: app.name,
  installationId: installation.id,
});

function installationEntry(
  action: string,
  app: App,
  installation: AppInstallation,
  metadata: Record<string, unknown>,
): Parameters<Recorder>[0] {
  return {
    action,
    relationName: 'AppInstallation',
    relationId: installation.id,
    related: { type: 'App', id: app.id, name: app.name },
    metadata,
  };
}
