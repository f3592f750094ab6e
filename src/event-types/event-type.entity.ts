import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import type { FieldScope } from '../apps/data-scopes.ts';

/** A catalog entry `[module.]model.action`: what hosts may publish and integrators may subscribe to. */
export const EventTypeEntity = defineEntity({
  name: 'EventType',
  tableName: 'event_types',
  properties: {
    name: p.string().length(255).primary(),
    group: p.string().length(100),
    description: p.text().nullable(),
    deprecated: p.boolean().default(false),
    /** A JSON Schema that `current` must satisfy when the type is published. */
    schema: p.json<Record<string, unknown>>().nullable(),
    /** Fields of `current` and `previous` only readers holding their scope see (apps). */
    fieldScopes: p.json<FieldScope[]>().nullable(),
    createdAt: p.datetime().onCreate(() => new Date()),
    updatedAt: p
      .datetime()
      .onCreate(() => new Date())
      .onUpdate(() => new Date()),
  },
  indexes: [{ properties: ['group', 'name'] }],
});
export type EventType = InferEntity<typeof EventTypeEntity>;
