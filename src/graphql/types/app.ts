import type { App, AppInstallation, AppVersion, ManifestWebhook } from '../../apps/app.entity.ts';
import type { IssuedAppWebhook, UpgradePreview } from '../../apps/app.service.ts';
import type { ManifestDiff } from '../../apps/manifest.ts';
import {
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  MissingScopeError,
  NotFoundError,
  PlanLimitError,
} from '../../errors.ts';
import { withoutSecrets } from '../../webhooks/webhook-audit.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { WebhookRef } from './webhook.ts';

const manages = { can: 'apps.manage' } as const;

export const AppRef = builder.objectRef<App>('App');
builder.node(AppRef, {
  description: 'An application the operator publishes for tenants to install, in immutable versions.',
  id: { resolve: (app) => app.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'key' in value && 'name' in value,
  loadMany: loadPermitted('App', 'apps.read', (ids, ctx) => ctx.services.apps.getApps(ctx.actor, ids)),
  fields: (t) => ({
    key: t.exposeString('key'),
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    versions: t.field({
      type: [AppVersionRef],
      description: 'Newest first.',
      resolve: (app, _args, ctx) => ctx.services.apps.versions(app.id),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const ManifestWebhookRef = builder.objectRef<ManifestWebhook>('AppManifestWebhook').implement({
  description: 'A webhook an app version declares, under its key.',
  fields: (t) => ({
    key: t.exposeString('key'),
    name: t.exposeString('name', { nullable: true }),
    url: t.string({
      description: 'Without credentials, query or fragment, except for the operator.',
      resolve: (w, _args, ctx) => (ctx.actor.admin ? w.url : withoutSecrets(w.url)),
    }),
    events: t.exposeStringList('events'),
  }),
});

const AppVersionRef = builder.objectRef<AppVersion>('AppVersion').implement({
  fields: (t) => ({
    id: t.exposeID('id'),
    version: t.exposeString('version'),
    scopes: t.stringList({
      description: 'The data scopes it asks for.',
      resolve: (v) => v.manifest.scopes,
    }),
    webhooks: t.field({ type: [ManifestWebhookRef], resolve: (v) => v.manifest.webhooks }),
    manifest: t.field({
      type: 'JSON',
      description:
        'As published; webhook URLs without credentials, query or fragment, except for the operator.',
      resolve: (v, _args, ctx) =>
        ctx.actor.admin
          ? v.manifest
          : {
              ...v.manifest,
              webhooks: v.manifest.webhooks.map((w) => ({ ...w, url: withoutSecrets(w.url) })),
            },
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
  }),
});

export const AppInstallationRef = builder.objectRef<AppInstallation>('AppInstallation');
builder.node(AppInstallationRef, {
  description: 'An app installed on the tenant: its version and the webhooks it made.',
  id: { resolve: (installation) => installation.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'versionId' in value,
  loadMany: loadPermitted('AppInstallation', 'apps.manage', (ids, ctx) =>
    ctx.services.apps.getInstallations(ctx.actor, ids),
  ),
  fields: (t) => ({
    app: t.field({
      type: AppRef,
      resolve: async (i, _args, ctx) => (await ctx.services.apps.getApps(ctx.actor, [i.appId]))[0]!,
    }),
    version: t.field({
      type: AppVersionRef,
      resolve: async (i, _args, ctx) => (await ctx.services.apps.getVersions([i.versionId]))[0]!,
    }),
    webhooks: t.field({
      type: [WebhookRef],
      description:
        "The app's webhooks: its manifest's, and those its token made. Needs webhooks:read as well.",
      authScopes: { can: 'webhooks.read' },
      resolve: (i, _args, ctx) => ctx.services.apps.installationWebhooks(ctx.actor, i.id),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.objectField(WebhookRef, 'manifestKey', (t) =>
  t.exposeString('manifestKey', {
    nullable: true,
    description: "The key of the app manifest's webhook it is; null for one no manifest declares.",
  }),
);

const AppWebhookChangeRef = builder.objectRef<ManifestDiff['changed'][number]>('AppWebhookChange').implement({
  fields: (t) => ({
    key: t.exposeString('key'),
    fields: t.exposeStringList('fields', { description: 'Of name, url, events.' }),
    before: t.field({ type: ManifestWebhookRef, resolve: (c) => c.before }),
    after: t.field({ type: ManifestWebhookRef, resolve: (c) => c.after }),
  }),
});

const AppUpgradePreviewRef = builder.objectRef<UpgradePreview>('AppUpgradePreview').implement({
  description: "What an upgrade changes: the manifest's webhooks by key, and the scopes.",
  fields: (t) => ({
    from: t.field({ type: AppVersionRef, resolve: (p) => p.from }),
    to: t.field({ type: AppVersionRef, resolve: (p) => p.to }),
    added: t.field({ type: [ManifestWebhookRef], resolve: (p) => p.added }),
    removed: t.field({ type: [ManifestWebhookRef], resolve: (p) => p.removed }),
    changed: t.field({
      type: [AppWebhookChangeRef],
      description: 'Updated in place: id, secret, delivery log and state kept.',
      resolve: (p) => p.changed,
    }),
    scopesAdded: t.exposeStringList('scopesAdded'),
    scopesDropped: t.exposeStringList('scopesDropped'),
  }),
});

const AppWebhookSecretRef = builder.objectRef<IssuedAppWebhook>('AppWebhookSecret').implement({
  description: 'A webhook an installation made, with its signing secret: shown once.',
  fields: (t) => ({
    key: t.exposeString('key'),
    webhook: t.field({ type: WebhookRef, resolve: (w) => w.webhook }),
    secret: t.exposeString('secret'),
  }),
});

const AppConnection = builder.connectionObject({ type: AppRef, name: 'AppConnection' });
const AppInstallationConnection = builder.connectionObject({
  type: AppInstallationRef,
  name: 'AppInstallationConnection',
});

builder.queryFields((t) => ({
  apps: t.field({
    type: AppConnection,
    description: 'The apps published, newest first.',
    authScopes: { can: 'apps.read' },
    args: { first: t.arg.int({ validate: firstArg }), after: t.arg.string() },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.apps.listApps(ctx.actor, pageRequest(args))),
  }),
  appInstallations: t.field({
    type: AppInstallationConnection,
    description: "The tenant's installed apps, newest first.",
    authScopes: manages,
    args: { first: t.arg.int({ validate: firstArg }), after: t.arg.string() },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.apps.listInstallations(ctx.actor, pageRequest(args))),
  }),
}));

const PublishAppVersionInput = builder.inputType('PublishAppVersionInput', {
  fields: (t) => ({
    appKey: t.string({ required: true, description: 'The app, made on its first version: e.g. crm-sync.' }),
    name: t.string({ required: true }),
    description: t.string(),
    version: t.string({ required: true, description: 'e.g. 1.2.0; never reused.' }),
    manifest: t.field({
      type: 'JSON',
      required: true,
      description:
        '{ scopes: ["crm.contact:read", …], webhooks: [{ key, name, url, events: ["crm.contact.created", …] }] }',
    }),
  }),
});

const InstallAppInput = builder.inputType('InstallAppInput', {
  fields: (t) => ({
    appId: t.globalID({ required: true, for: AppRef }),
    version: t.string({ description: 'The newest by default.' }),
  }),
});

const UpgradeAppInput = (name: string) =>
  builder.inputType(name, {
    fields: (t) => ({
      installationId: t.globalID({ required: true, for: AppInstallationRef }),
      version: t.string({ required: true }),
    }),
  });

const UninstallAppInput = builder.inputType('UninstallAppInput', {
  fields: (t) => ({ installationId: t.globalID({ required: true, for: AppInstallationRef }) }),
});

const PublishAppVersionPayload = builder
  .objectRef<{ app: App; version: AppVersion }>('PublishAppVersionPayload')
  .implement({
    fields: (t) => ({
      app: t.field({ type: AppRef, resolve: (p) => p.app }),
      version: t.field({ type: AppVersionRef, resolve: (p) => p.version }),
    }),
  });

const InstallAppPayload = builder
  .objectRef<{ installation: AppInstallation; token: string; webhooks: IssuedAppWebhook[] }>(
    'InstallAppPayload',
  )
  .implement({
    fields: (t) => ({
      installation: t.field({ type: AppInstallationRef, resolve: (p) => p.installation }),
      token: t.exposeString('token', {
        description: "The app's token, holding its manifest's scopes: shown once.",
      }),
      webhooks: t.field({ type: [AppWebhookSecretRef], resolve: (p) => p.webhooks }),
    }),
  });

const PreviewAppUpgradePayload = builder
  .objectRef<{ preview: UpgradePreview }>('PreviewAppUpgradePayload')
  .implement({
    fields: (t) => ({ preview: t.field({ type: AppUpgradePreviewRef, resolve: (p) => p.preview }) }),
  });

const UpgradeAppPayload = builder
  .objectRef<{ installation: AppInstallation; preview: UpgradePreview; webhooks: IssuedAppWebhook[] }>(
    'UpgradeAppPayload',
  )
  .implement({
    fields: (t) => ({
      installation: t.field({ type: AppInstallationRef, resolve: (p) => p.installation }),
      preview: t.field({
        type: AppUpgradePreviewRef,
        description: 'What it changed.',
        resolve: (p) => p.preview,
      }),
      webhooks: t.field({
        type: [AppWebhookSecretRef],
        description: 'The webhooks it added, with their secrets: shown once.',
        resolve: (p) => p.webhooks,
      }),
    }),
  });

const UninstallAppPayload = builder
  .objectRef<{ installation: AppInstallation }>('UninstallAppPayload')
  .implement({
    fields: (t) => ({ installation: t.field({ type: AppInstallationRef, resolve: (p) => p.installation }) }),
  });

builder.mutationFields((t) => ({
  publishAppVersion: t.field({
    type: PublishAppVersionPayload,
    description:
      'Publishes a version of an app (operator only); its manifest is checked against the catalog.',
    args: { input: t.arg({ type: PublishAppVersionInput, required: true }) },
    errors: {
      types: [InvalidInputError, ConflictError, ForbiddenError],
      directResult: true,
      union: { name: 'PublishAppVersionResult' },
    },
    resolve: (_root, { input }, ctx) =>
      ctx.services.apps.publishVersion(ctx.actor, { ...input, manifest: input.manifest }),
  }),
  installApp: t.field({
    type: InstallAppPayload,
    description: "Installs an app: its token and the manifest's webhooks, in one transaction.",
    authScopes: manages,
    args: { input: t.arg({ type: InstallAppInput, required: true }) },
    errors: {
      types: [
        InvalidInputError,
        NotFoundError,
        ConflictError,
        ForbiddenError,
        PlanLimitError,
        MissingScopeError,
      ],
      directResult: true,
      union: { name: 'InstallAppResult' },
    },
    resolve: (_root, { input }, ctx) => ctx.services.apps.install(ctx.actor, input.appId.id, input.version),
  }),
  previewAppUpgrade: t.field({
    type: PreviewAppUpgradePayload,
    description: 'What upgrading would change; changes nothing.',
    authScopes: manages,
    args: { input: t.arg({ type: UpgradeAppInput('PreviewAppUpgradeInput'), required: true }) },
    errors: {
      types: [InvalidInputError, NotFoundError],
      directResult: true,
      union: { name: 'PreviewAppUpgradeResult' },
    },
    resolve: async (_root, { input }, ctx) => ({
      preview: await ctx.services.apps.previewUpgrade(ctx.actor, input.installationId.id, input.version),
    }),
  }),
  upgradeApp: t.field({
    type: UpgradeAppPayload,
    description:
      'Moves the installation to another version, reconciling its webhooks by key in one transaction.',
    authScopes: manages,
    args: { input: t.arg({ type: UpgradeAppInput('UpgradeAppInput'), required: true }) },
    errors: {
      types: [InvalidInputError, NotFoundError, ConflictError, PlanLimitError, MissingScopeError],
      directResult: true,
      union: { name: 'UpgradeAppResult' },
    },
    resolve: (_root, { input }, ctx) =>
      ctx.services.apps.upgrade(ctx.actor, input.installationId.id, input.version),
  }),
  uninstallApp: t.field({
    type: UninstallAppPayload,
    description: "Removes the app's webhooks and revokes its token.",
    authScopes: manages,
    args: { input: t.arg({ type: UninstallAppInput, required: true }) },
    errors: { types: [NotFoundError], directResult: true, union: { name: 'UninstallAppResult' } },
    resolve: async (_root, { input }, ctx) => ({
      installation: await ctx.services.apps.uninstall(ctx.actor, input.installationId.id),
    }),
  }),
}));
