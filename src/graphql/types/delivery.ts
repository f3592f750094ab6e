import { deliveryStatuses, type Delivery, type DeliveryAttempt } from '../../deliveries/delivery.entity.ts';
import { ConflictError, ForbiddenError, InvalidInputError, NotFoundError } from '../../errors.ts';
import { eventTypeName } from '../../event-types/event-type.service.ts';
import type { Streamed } from '../../live/cursor.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { liveAfterArg, liveItem, streamCursorField } from '../live.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { EventRef } from './event.ts';
import { WebhookRef } from './webhook.ts';

const reads = { can: 'deliveries.read' } as const;

export const DeliveryStatusRef = builder.enumType('DeliveryStatus', {
  description:
    'PENDING: queued; RETRYING: waiting for its next attempt; SUCCEEDED; FAILED: gave up; PAUSED: held while its tenant is suspended.',
  values: deliveryStatuses,
});

export const DeliveryAttemptRef = builder.objectRef<DeliveryAttempt & Streamed>('DeliveryAttempt');

export const DeliveryRef = builder.objectRef<Delivery>('Delivery');
builder.node(DeliveryRef, {
  description: 'One event to one webhook, with every attempt: the delivery log.',
  id: { resolve: (delivery) => delivery.id },
  isTypeOf: (value) =>
    typeof value === 'object' && value !== null && 'eventType' in value && 'webhookId' in value,
  loadMany: loadPermitted('Delivery', 'deliveries.read', (ids, ctx) =>
    ctx.services.deliveries.getMany(ctx.actor, ids),
  ),
  fields: (t) => ({
    webhookId: t.globalID({ resolve: (delivery) => ({ type: 'Webhook', id: delivery.webhookId }) }),
    webhook: t.field({
      type: WebhookRef,
      nullable: true,
      description: 'Null once the webhook is deleted. Needs webhooks:read as well.',
      authScopes: { can: 'webhooks.read' },
      resolve: async (delivery, _args, ctx) =>
        (await ctx.services.webhooks.getMany(ctx.actor, [delivery.webhookId]))[0] ?? null,
    }),
    event: t.field({
      type: EventRef,
      nullable: true,
      description: 'Null once pruned by retention. Needs events:read as well.',
      authScopes: { can: 'events.read' },
      resolve: async (delivery, _args, ctx) =>
        (await ctx.services.events.getMany(ctx.actor, [delivery.eventId]))[0] ?? null,
    }),
    eventType: t.exposeString('eventType'),
    status: t.field({ type: DeliveryStatusRef, resolve: (delivery) => delivery.status }),
    attempts: t.exposeInt('attempts', { description: 'How many attempts were made.' }),
    nextAttemptAt: t.expose('nextAttemptAt', { type: 'DateTime', nullable: true }),
    lastAttemptAt: t.expose('lastAttemptAt', { type: 'DateTime', nullable: true }),
    lastStatusCode: t.exposeInt('lastStatusCode', { nullable: true }),
    lastError: t.exposeString('lastError', { nullable: true }),
    succeededAt: t.expose('succeededAt', { type: 'DateTime', nullable: true }),
    attemptLog: t.field({
      type: [DeliveryAttemptRef],
      resolve: (delivery, _args, ctx) => ctx.services.deliveries.attempts(ctx.actor, delivery.id),
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

builder.objectType(DeliveryAttemptRef, {
  description: 'One HTTP try of a delivery.',
  fields: (t) => ({
    deliveryId: t.globalID({ resolve: (attempt) => ({ type: 'Delivery', id: attempt.deliveryId }) }),
    delivery: t.field({
      type: DeliveryRef,
      nullable: true,
      description: 'Null once pruned by retention.',
      resolve: async (attempt, _args, ctx) =>
        (await ctx.services.deliveries.getMany(ctx.actor, [attempt.deliveryId]))[0] ?? null,
    }),
    webhookId: t.globalID({ resolve: (attempt) => ({ type: 'Webhook', id: attempt.webhookId }) }),
    attempt: t.exposeInt('attempt', { description: 'From 1.' }),
    status: t.field({
      type: DeliveryStatusRef,
      description: "The delivery's status once this attempt was judged.",
      resolve: (attempt) => attempt.status,
    }),
    url: t.exposeString('url'),
    statusCode: t.exposeInt('statusCode', { nullable: true, description: 'Null when no response came.' }),
    responseTimeMs: t.exposeInt('responseTimeMs'),
    response: t.exposeString('response', {
      nullable: true,
      description: 'The first 4 KiB of the response body.',
    }),
    errorClass: t.exposeString('errorClass', {
      nullable: true,
      description: 'timeout, connect, dns, ssrf, tls or network, when no response came.',
    }),
    error: t.exposeString('error', { nullable: true }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    streamCursor: t.string({ ...streamCursorField, resolve: (attempt) => attempt.streamCursor ?? null }),
  }),
});

const DeliveryConnection = builder.connectionObject({ type: DeliveryRef, name: 'DeliveryConnection' });

const DeliveryFilter = builder.inputType('DeliveryFilter', {
  fields: (t) => ({
    webhookId: t.globalID({ for: WebhookRef }),
    statuses: t.field({ type: [DeliveryStatusRef] }),
    eventType: t.string({ validate: eventTypeName }),
    from: t.field({ type: 'DateTime', description: 'Inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Exclusive.' }),
  }),
});

builder.queryFields((t) => ({
  deliveries: t.field({
    type: DeliveryConnection,
    description: "The tenant's deliveries, newest first.",
    authScopes: reads,
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: DeliveryFilter }),
    },
    resolve: async (_root, args, ctx) => {
      const { webhookId, ...filter } = args.filter ?? {};
      return toConnection(
        await ctx.services.deliveries.list(
          ctx.actor,
          { ...filter, webhookId: webhookId?.id },
          pageRequest(args),
        ),
      );
    },
  }),
  delivery: t.field({
    type: DeliveryRef,
    nullable: true,
    authScopes: reads,
    args: { id: t.arg.globalID({ required: true, for: DeliveryRef }) },
    resolve: async (_root, { id }, ctx) =>
      (await ctx.services.deliveries.getMany(ctx.actor, [id.id]))[0] ?? null,
  }),
}));

const RedeliverInput = builder.inputType('RedeliverInput', {
  fields: (t) => ({ deliveryId: t.globalID({ required: true, for: DeliveryRef }) }),
});

const ReplayDeliveriesInput = builder.inputType('ReplayDeliveriesInput', {
  fields: (t) => ({
    webhookId: t.globalID({ required: true, for: WebhookRef }),
    since: t.field({ type: 'DateTime', required: true }),
    until: t.field({ type: 'DateTime', description: 'Exclusive; now when omitted.' }),
    onlyFailed: t.boolean({ description: 'Only deliveries that failed; otherwise succeeded ones too.' }),
  }),
});

const SendTestEventInput = builder.inputType('SendTestEventInput', {
  fields: (t) => ({
    webhookId: t.globalID({ required: true, for: WebhookRef }),
    type: t.string({
      description: "Defaults to the webhook's first subscribed type.",
      validate: eventTypeName,
    }),
  }),
});

const DeliveryPayload = builder.objectRef<{ delivery: Delivery }>('DeliveryPayload').implement({
  fields: (t) => ({ delivery: t.field({ type: DeliveryRef, resolve: (p) => p.delivery }) }),
});

const ReplayDeliveriesPayload = builder.objectRef<{ queued: number }>('ReplayDeliveriesPayload').implement({
  fields: (t) => ({
    queued: t.exposeInt('queued', { description: 'How many deliveries were queued again.' }),
  }),
});

const opErrors = [InvalidInputError, NotFoundError, ConflictError];

builder.mutationFields((t) => ({
  redeliver: t.field({
    type: DeliveryPayload,
    description: 'Sends a delivery again now, as its next attempt.',
    authScopes: { can: 'deliveries.manage' },
    args: { input: t.arg({ type: RedeliverInput, required: true }) },
    errors: { types: opErrors, directResult: true, union: { name: 'RedeliverResult' } },
    resolve: async (_root, { input }, ctx) => ({
      delivery: await ctx.services.deliveries.redeliver(ctx.actor, input.deliveryId.id),
    }),
  }),
  replayDeliveries: t.field({
    type: ReplayDeliveriesPayload,
    description: "Queues again a webhook's deliveries of a time range.",
    authScopes: { can: 'deliveries.manage' },
    args: { input: t.arg({ type: ReplayDeliveriesInput, required: true }) },
    errors: { types: opErrors, directResult: true, union: { name: 'ReplayDeliveriesResult' } },
    resolve: async (_root, { input }, ctx) => ({
      queued: await ctx.services.deliveries.replay(ctx.actor, { ...input, webhookId: input.webhookId.id }),
    }),
  }),
  sendTestEvent: t.field({
    type: DeliveryPayload,
    description: 'Sends a test event to one webhook only.',
    authScopes: { can: 'webhooks.manage' },
    args: { input: t.arg({ type: SendTestEventInput, required: true }) },
    errors: { types: opErrors, directResult: true, union: { name: 'SendTestEventResult' } },
    resolve: async (_root, { input }, ctx) => ({
      delivery: await ctx.services.deliveries.sendTest(ctx.actor, {
        ...input,
        webhookId: input.webhookId.id,
      }),
    }),
  }),
}));

builder.subscriptionFields((t) => ({
  deliveryAttempted: t.field({
    type: DeliveryAttemptRef,
    description:
      "Delivery attempts of the caller's tenant as workers record them; of one webhook, and of deliveries left in some statuses, when given.",
    authScopes: reads,
    args: {
      webhookId: t.arg.globalID({ for: WebhookRef }),
      statuses: t.arg({ type: [DeliveryStatusRef] }),
      after: t.arg.string(liveAfterArg),
    },
    subscribe: async (_root, { webhookId, ...args }, ctx) => {
      // An app's token follows one of its own webhooks, never the tenant's whole stream.
      if (ctx.actor.appInstallationId) {
        if (!webhookId)
          throw new ForbiddenError("an app's token follows one of its webhooks: give webhookId");
        if (!(await ctx.services.webhooks.find(ctx.actor, webhookId.id))) {
          throw new NotFoundError('Webhook', webhookId.id);
        }
      }
      return ctx.services.live.attempts(ctx.actor, { ...args, webhookId: webhookId?.id });
    },
    resolve: (attempt) => liveItem(attempt),
  }),
}));
