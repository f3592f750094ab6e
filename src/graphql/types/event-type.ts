import { ForbiddenError, InvalidInputError } from '../../errors.ts';
import type { EventType } from '../../event-types/event-type.entity.ts';
import type { EventTypeGroup } from '../../event-types/event-type.service.ts';
import type { FieldScope } from '../../apps/data-scopes.ts';
import { builder } from '../builder.ts';

const FieldScopeRef = builder.objectRef<FieldScope>('FieldScope').implement({
  fields: (t) => ({
    path: t.exposeString('path', { description: 'Keys separated by dots, e.g. email or address.street.' }),
    scope: t.exposeString('scope', { description: 'e.g. crm.contact.pii:read' }),
  }),
});

const FieldScopeInput = builder.inputType('FieldScopeInput', {
  fields: (t) => ({ path: t.string({ required: true }), scope: t.string({ required: true }) }),
});

export const EventTypeRef = builder.objectRef<EventType>('EventType').implement({
  description: 'A catalog entry `[module.]model.action` that can be published and subscribed to.',
  fields: (t) => ({
    name: t.exposeString('name'),
    group: t.exposeString('group', { description: 'Heading for a dropdown, e.g. "Invoices".' }),
    description: t.string({ nullable: true, resolve: (type) => type.description ?? null }),
    deprecated: t.exposeBoolean('deprecated'),
    schema: t.expose('schema', {
      type: 'JSON',
      nullable: true,
      description: 'JSON Schema of `current`, if any.',
    }),
    fieldScopes: t.field({
      type: [FieldScopeRef],
      description: "Fields of current and previous that only apps holding the field's scope receive.",
      resolve: (type) => type.fieldScopes ?? [],
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const EventTypeGroupRef = builder.objectRef<EventTypeGroup>('EventTypeGroup').implement({
  fields: (t) => ({
    name: t.exposeString('name'),
    eventTypes: t.field({ type: [EventTypeRef], resolve: (group) => group.eventTypes }),
  }),
});

builder.queryFields((t) => ({
  eventTypes: t.field({
    type: [EventTypeRef],
    description: 'The flat catalog, for validation; readable by every token.',
    args: { group: t.arg.string() },
    resolve: (_root, { group }, ctx) => ctx.services.eventTypes.list(ctx.actor, { group }),
  }),
  eventTypeGroups: t.field({
    type: [EventTypeGroupRef],
    description: 'The catalog grouped, for a dropdown.',
    resolve: (_root, _args, ctx) => ctx.services.eventTypes.groups(ctx.actor),
  }),
}));

const UpsertEventTypeInput = builder.inputType('UpsertEventTypeInput', {
  fields: (t) => ({
    name: t.string({ required: true, description: '[module.]model.action, lowercase' }),
    group: t.string({ required: true }),
    description: t.string(),
    deprecated: t.boolean({ description: 'Deprecated types cannot be newly subscribed to.' }),
    schema: t.field({
      type: 'JSON',
      description: 'A JSON Schema publishEvent checks `current` against; null clears it.',
    }),
    fieldScopes: t.field({
      type: [FieldScopeInput],
      description: 'Fields only apps holding their scope receive; null clears them.',
    }),
  }),
});

const UpsertEventTypePayload = builder
  .objectRef<{ eventType: EventType }>('UpsertEventTypePayload')
  .implement({
    fields: (t) => ({ eventType: t.field({ type: EventTypeRef, resolve: (p) => p.eventType }) }),
  });

builder.mutationFields((t) => ({
  upsertEventType: t.field({
    type: UpsertEventTypePayload,
    description: 'Adds a catalog entry or updates it (operator only).',
    args: { input: t.arg({ type: UpsertEventTypeInput, required: true }) },
    errors: {
      types: [InvalidInputError, ForbiddenError],
      directResult: true,
      union: { name: 'UpsertEventTypeResult' },
    },
    resolve: async (_root, { input }, ctx) => ({
      eventType: await ctx.services.eventTypes.upsert(ctx.actor, input),
    }),
  }),
}));
