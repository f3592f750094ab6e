import { z } from 'zod';
import type { Orm } from '../../db/orm.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { ForbiddenError } from '../errors.ts';
import { parse } from '../input.ts';
import type { Actor } from '../tenancy/actor.ts';
import { EventTypeEntity, type EventType } from './event-type.entity.ts';
import { UnknownEventTypeError } from './event-type.errors.ts';

/** `[module.]model.action`: lowercase tokens, so every part is a valid NATS subject token. */
export const eventTypeName = z
  .string()
  .max(255)
  .regex(
    /^([a-z][a-z0-9_]*\.)?[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$/,
    'must be [module.]model.action in lowercase letters, digits and _',
  );

export const upsertEventTypeInput = z.object({
  name: eventTypeName,
  group: z.string().trim().min(1).max(100),
  description: z.string().max(2000).nullish(),
  deprecated: z.boolean().nullish(),
});
export type UpsertEventTypeInput = z.infer<typeof upsertEventTypeInput>;

export interface ParsedEventType {
  module: string | null;
  model: string;
  action: string;
}

export function parseEventTypeName(name: string): ParsedEventType {
  const parts = name.split('.');
  const [action, model, module] = [parts.pop()!, parts.pop()!, parts.pop() ?? null];
  return { module, model, action };
}

export interface EventTypeGroup {
  name: string;
  eventTypes: EventType[];
}

/**
 * The catalog is small and read on every publish, so it is held in memory: refreshed after
 * `maxAgeMs`, at once after a local upsert, and on a miss (another process may have just added it).
 */
export class EventTypeService {
  private cache: Map<string, EventType> | undefined;
  private loadedAt = 0;
  private readonly orm: Orm;
  private readonly audit: AuditService;
  private readonly maxAgeMs: number;

  constructor(orm: Orm, audit: AuditService, options: { maxAgeMs?: number } = {}) {
    this.orm = orm;
    this.audit = audit;
    this.maxAgeMs = options.maxAgeMs ?? 5_000;
  }

  async list(_actor: Actor, filter: { group?: string | null } = {}): Promise<EventType[]> {
    const all = [...(await this.catalog()).values()];
    return filter.group ? all.filter((t) => t.group === filter.group) : all;
  }

  async groups(actor: Actor): Promise<EventTypeGroup[]> {
    const groups = new Map<string, EventType[]>();
    for (const type of await this.list(actor)) {
      groups.set(type.group, [...(groups.get(type.group) ?? []), type]);
    }
    return [...groups].map(([name, eventTypes]) => ({ name, eventTypes }));
  }

  /** The catalog entry for a type about to be published; throws UnknownEventTypeError. */
  async require(name: string, path: string[]): Promise<EventType> {
    // A miss may be a type another process just added: reload, but at most once a second.
    const type =
      (await this.catalog()).get(name) ??
      (Date.now() - this.loadedAt > 1_000 ? (await this.catalog(true)).get(name) : undefined);
    if (!type) throw new UnknownEventTypeError(path, name);
    return type;
  }

  async upsert(actor: Actor, raw: UpsertEventTypeInput): Promise<EventType> {
    if (!actor.admin) throw new ForbiddenError('only the operator manages the event-type catalog');
    const input = parse(upsertEventTypeInput, raw);
    const type = await this.audit.transact(actor, async (tx, record) => {
      const existing = await tx.findOne(EventTypeEntity, { name: input.name });
      const before = existing ? { ...existing } : null;
      const entry =
        existing ??
        tx.create(EventTypeEntity, {
          name: input.name,
          group: input.group,
          description: input.description ?? null,
        });
      entry.group = input.group;
      if (input.description !== undefined) entry.description = input.description;
      if (input.deprecated != null) entry.deprecated = input.deprecated;
      const changed = changes(before, entry, ['name', 'group', 'description', 'deprecated']);
      if (Object.keys(changed).length > 0) {
        record({
          action: existing ? 'event_type.updated' : 'event_type.created',
          relationName: 'EventType',
          relationId: entry.name,
          metadata: { changes: changed },
        });
      }
      return entry;
    });
    this.cache = undefined;
    return type;
  }

  private async catalog(refresh = false): Promise<Map<string, EventType>> {
    if (refresh || !this.cache || Date.now() - this.loadedAt > this.maxAgeMs) {
      const rows = await this.orm.em
        .fork()
        .find(EventTypeEntity, {}, { orderBy: { group: 'asc', name: 'asc' } });
      this.cache = new Map(rows.map((t) => [t.name, t]));
      this.loadedAt = Date.now();
    }
    return this.cache;
  }
}
