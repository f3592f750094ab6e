import { z } from 'zod';
import {
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  MissingScopeError,
  NotFoundError,
  PlanLimitError,
} from '../../errors.ts';
import type { Webhook } from '../../webhooks/webhook.entity.ts';
import type { CreateWebhookResult } from '../../webhooks/webhook.service.ts';
import { eventTypeName } from '../../event-types/event-type.service.ts';
import { text } from '../../input.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { ApiClientRef } from './api-token.ts';

const reads = { can: 'webhooks.read' } as const;
const manages = { can: 'webhooks.manage' } as const;

export const WebhookRef = builder.objectRef<Webhook>('Webhook');
builder.node(WebhookRef, {
  description: 'An outgoing subscription: signed POSTs of the subscribed events to `url`.',
  id: { resolve: (webhook) => webhook.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'subscribedEvents' in value,
  loadMany: loadPermitted('Webhook', 'webhooks.read', (ids, ctx) =>
    ctx.services.webhooks.getMany(ctx.actor, ids),
  ),
  fields: (t) => ({
    name: t.exposeString('name', { nullable: true }),
    url: t.exposeString('url'),
    isActive: t.exposeBoolean('isActive'),
    subscribedEvents: t.exposeStringList('subscribedEvents', {
      description: 'Event types, prefixes ending in .* (invoices.*), or * for all.',
    }),
    externalId: t.exposeString('externalId', {
      nullable: true,
      description:
        "The integration's own id (a Zap, a Make scenario): creating again with it returns this webhook.",
    }),
    managedBy: t.field({ type: ApiClientRef, resolve: (webhook) => webhook.managedBy }),
    lastSuccessAt: t.expose('lastSuccessAt', { type: 'DateTime', nullable: true }),
    lastFailureAt: t.expose('lastFailureAt', { type: 'DateTime', nullable: true }),
    disabledAt: t.expose('disabledAt', { type: 'DateTime', nullable: true }),
    disabledReason: t.exposeString('disabledReason', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const WebhookConnection = builder.connectionObject({ type: WebhookRef, name: 'WebhookConnection' });

const WebhookFilter = builder.inputType('WebhookFilter', {
  fields: (t) => ({
    isActive: t.boolean(),
    eventType: t.string({
      description: 'Webhooks that receive this event type (directly or by a pattern).',
      validate: eventTypeName,
    }),
    managedBy: t.field({ type: ApiClientRef }),
    externalId: t.string({ validate: text(255) }),
    search: t.string({ description: 'Case-insensitive text in name or url.', validate: text(255) }),
  }),
});

builder.queryFields((t) => ({
  webhooks: t.field({
    type: WebhookConnection,
    description: "The tenant's webhooks, newest first.",
    authScopes: reads,
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: WebhookFilter }),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.webhooks.list(ctx.actor, args.filter ?? {}, pageRequest(args))),
  }),
  webhook: t.field({
    type: WebhookRef,
    nullable: true,
    authScopes: reads,
    args: { id: t.arg.globalID({ required: true, for: WebhookRef }) },
    resolve: (_root, { id }, ctx) => ctx.services.webhooks.find(ctx.actor, id.id),
  }),
}));

const CreateWebhookInput = builder.inputType('CreateWebhookInput', {
  fields: (t) => ({
    name: t.string({ description: 'At most 255 characters.' }),
    url: t.string({ required: true, description: 'https, at most 2048 characters, a public address.' }),
    subscribedEvents: t.stringList({ required: true }),
    externalId: t.string(),
    isActive: t.boolean({ description: 'Defaults to true.' }),
  }),
});

const CreateWebhookPayload = builder.objectRef<CreateWebhookResult>('CreateWebhookPayload').implement({
  fields: (t) => ({
    webhook: t.field({ type: WebhookRef, resolve: (p) => p.webhook }),
    secret: t.exposeString('secret', {
      nullable: true,
      description: 'The signing secret (whsec_…): shown only when created, never again.',
    }),
    created: t.exposeBoolean('created', {
      description: 'False when an existing webhook with this externalId was returned.',
    }),
  }),
});

const UpdateWebhookInput = builder.inputType('UpdateWebhookInput', {
  description: 'JSON Merge Patch: omit a field to keep it, null clears a nullable field.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: WebhookRef }),
    name: t.string(),
    url: t.string(),
    subscribedEvents: t.stringList(),
    externalId: t.string(),
    isActive: t.boolean(),
    disabledReason: t.string({ description: 'Why, when isActive turns false.' }),
  }),
});

const WebhookIdInput = builder.inputType('WebhookIdInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: WebhookRef }) }),
});

const DeleteWebhookInput = builder.inputType('DeleteWebhookInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: WebhookRef }) }),
});

const DisableWebhookInput = builder.inputType('DisableWebhookInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: WebhookRef }), reason: t.string() }),
});

const RotateWebhookSecretInput = builder.inputType('RotateWebhookSecretInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: WebhookRef }),
    graceSeconds: t.int({
      description: 'How long the old secret keeps signing; 24 hours by default, at most 7 days.',
      validate: z
        .number()
        .int()
        .min(0)
        .max(7 * 24 * 3600)
        .nullish(),
    }),
  }),
});

const WebhookPayload = builder.objectRef<{ webhook: Webhook }>('WebhookPayload').implement({
  fields: (t) => ({ webhook: t.field({ type: WebhookRef, resolve: (p) => p.webhook }) }),
});

const RotateWebhookSecretPayload = builder
  .objectRef<{ webhook: Webhook; secret: string }>('RotateWebhookSecretPayload')
  .implement({
    fields: (t) => ({
      webhook: t.field({ type: WebhookRef, resolve: (p) => p.webhook }),
      secret: t.exposeString('secret', { description: 'The new secret: shown only here.' }),
    }),
  });

const changeErrors = [InvalidInputError, NotFoundError, ForbiddenError, ConflictError];

builder.mutationFields((t) => ({
  createWebhook: t.field({
    type: CreateWebhookPayload,
    authScopes: manages,
    args: { input: t.arg({ type: CreateWebhookInput, required: true }) },
    errors: {
      types: [InvalidInputError, PlanLimitError, ConflictError, MissingScopeError],
      directResult: true,
      union: { name: 'CreateWebhookResult' },
    },
    resolve: (_root, { input }, ctx) => ctx.services.webhooks.create(ctx.actor, input),
  }),
  updateWebhook: t.field({
    type: WebhookPayload,
    authScopes: manages,
    args: { input: t.arg({ type: UpdateWebhookInput, required: true }) },
    errors: {
      types: [...changeErrors, MissingScopeError],
      directResult: true,
      union: { name: 'UpdateWebhookResult' },
    },
    resolve: async (_root, { input: { id, ...patch } }, ctx) => ({
      webhook: await ctx.services.webhooks.update(ctx.actor, id.id, patch),
    }),
  }),
  enableWebhook: t.field({
    type: WebhookPayload,
    authScopes: manages,
    args: { input: t.arg({ type: WebhookIdInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'EnableWebhookResult' } },
    resolve: async (_root, { input }, ctx) => ({
      webhook: await ctx.services.webhooks.setActive(ctx.actor, input.id.id, true),
    }),
  }),
  disableWebhook: t.field({
    type: WebhookPayload,
    authScopes: manages,
    args: { input: t.arg({ type: DisableWebhookInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'DisableWebhookResult' } },
    resolve: async (_root, { input }, ctx) => ({
      webhook: await ctx.services.webhooks.setActive(ctx.actor, input.id.id, false, input.reason),
    }),
  }),
  deleteWebhook: t.field({
    type: WebhookPayload,
    description: 'Deletes the webhook; the payload holds it as it was.',
    authScopes: manages,
    args: { input: t.arg({ type: DeleteWebhookInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'DeleteWebhookResult' } },
    resolve: async (_root, { input }, ctx) => ({
      webhook: await ctx.services.webhooks.delete(ctx.actor, input.id.id),
    }),
  }),
  rotateWebhookSecret: t.field({
    type: RotateWebhookSecretPayload,
    authScopes: manages,
    args: { input: t.arg({ type: RotateWebhookSecretInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'RotateWebhookSecretResult' } },
    resolve: (_root, { input }, ctx) =>
      ctx.services.webhooks.rotateSecret(
        ctx.actor,
        input.id.id,
        input.graceSeconds == null ? undefined : input.graceSeconds * 1000,
      ),
  }),
}));
