import { z } from 'zod';
import { eventTypeName } from '../../event-types/event-type.service.ts';
import { ConflictError, InvalidInputError } from '../../errors.ts';
import type { PublishedEvent } from '../../events/published-event.ts';
import type { PublishResult } from '../../events/event.service.ts';
import type { Streamed } from '../../live/cursor.ts';
import { scopedPayload } from '../../apps/data-scopes.ts';
import { builder } from '../builder.ts';
import type { Context } from '../context.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';
import { liveAfterArg, liveItem, streamCursorField } from '../live.ts';

const EventMetaRef = builder.objectRef<PublishedEvent['meta']>('EventMeta').implement({
  description: 'The parts of the event type: `[module.]model.action`.',
  fields: (t) => ({
    module: t.string({ nullable: true, resolve: (meta) => meta.module }),
    model: t.exposeString('model'),
    action: t.exposeString('action'),
  }),
});

/** The payload as the caller may see it: whole, or as an app's scopes allow. */
async function payloadFor(
  event: PublishedEvent,
  ctx: Context,
): Promise<{ current: unknown; previous: unknown }> {
  const scopes = ctx.actor.dataScopes;
  if (!scopes) return event;
  const rules = await ctx.services.eventTypes.fieldScopes(event.type);
  return scopedPayload({ ...event.meta, current: event.current, previous: event.previous }, rules, scopes);
}

export const EventRef = builder.objectRef<PublishedEvent & Streamed>('Event');
builder.node(EventRef, {
  description: 'A domain event published by the host.',
  id: { resolve: (event) => event.id },
  isTypeOf: (value) =>
    typeof value === 'object' && value !== null && 'idempotencyKey' in value && 'occurredAt' in value,
  loadMany: loadPermitted('Event', 'events.read', (ids, ctx) => ctx.services.events.getMany(ctx.actor, ids)),
  fields: (t) => ({
    type: t.exposeString('type'),
    meta: t.field({ type: EventMetaRef, resolve: (event) => event.meta }),
    current: t.field({
      type: 'JSON',
      nullable: true,
      description:
        "The object after the change. An app's token sees only what its scopes allow (null for a model they do not cover).",
      resolve: async (event, _args, ctx) => (await payloadFor(event, ctx)).current ?? null,
    }),
    previous: t.field({
      type: 'JSON',
      nullable: true,
      description: 'The object before the change, limited as current is.',
      resolve: async (event, _args, ctx) => (await payloadFor(event, ctx)).previous ?? null,
    }),
    occurredAt: t.expose('occurredAt', { type: 'DateTime' }),
    idempotencyKey: t.exposeString('idempotencyKey'),
    streamCursor: t.string({ ...streamCursorField, resolve: (event) => event.streamCursor ?? null }),
  }),
});

const EventConnection = builder.connectionObject({ type: EventRef, name: 'EventConnection' });

const EventFilter = builder.inputType('EventFilter', {
  fields: (t) => ({
    types: t.stringList({ description: 'Any of these types.', validate: z.array(eventTypeName).max(100) }),
    from: t.field({ type: 'DateTime', description: 'Received at or after; inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Received before; exclusive.' }),
  }),
});

builder.queryFields((t) => ({
  events: t.field({
    type: EventConnection,
    description: "The tenant's published events, newest first.",
    authScopes: { can: 'events.read' },
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: EventFilter }),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.events.list(ctx.actor, args.filter ?? {}, pageRequest(args))),
  }),
}));

const PublishEventInput = builder.inputType('PublishEventInput', {
  fields: (t) => ({
    type: t.string({ required: true, description: 'A type from the catalog, e.g. "invoices.invoice.paid".' }),
    current: t.field({ type: 'JSON' }),
    previous: t.field({ type: 'JSON' }),
    occurredAt: t.field({ type: 'DateTime', description: 'Defaults to the time of publishing.' }),
    idempotencyKey: t.string({
      description:
        'Publishing the same key again returns the first event and publishes nothing. Defaults to the event id.',
    }),
  }),
});

const PublishEventPayload = builder.objectRef<PublishResult>('PublishEventPayload').implement({
  fields: (t) => ({
    event: t.field({ type: EventRef, resolve: (result) => result.event }),
    duplicate: t.exposeBoolean('duplicate', {
      description: 'True when the idempotency key was seen before.',
    }),
  }),
});

builder.mutationFields((t) => ({
  publishEvent: t.field({
    type: PublishEventPayload,
    authScopes: { can: 'events.publish' },
    args: { input: t.arg({ type: PublishEventInput, required: true }) },
    errors: {
      types: [InvalidInputError, ConflictError],
      directResult: true,
      union: { name: 'PublishEventResult' },
    },
    resolve: (_root, { input }, ctx) => ctx.services.events.publish(ctx.actor, input),
  }),
}));

builder.subscriptionFields((t) => ({
  eventPublished: t.field({
    type: EventRef,
    description: "Events of the caller's tenant as they are published; all types unless `types` is given.",
    authScopes: { can: 'events.read' },
    args: {
      types: t.arg.stringList({ validate: z.array(eventTypeName).max(100).nullish() }),
      after: t.arg.string(liveAfterArg),
    },
    subscribe: (_root, args, ctx) => ctx.services.live.events(ctx.actor, args),
    resolve: (event) => liveItem(event),
  }),
}));
