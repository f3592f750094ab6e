import { z } from 'zod';
import { fieldScopes, type FieldScope } from '../apps/data-scopes.ts';
import type { Orm } from '../db/orm.ts';
import type { AuditService } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import { InvalidInputError, type FieldProblem } from '../errors.ts';
import { demand } from '../permissions.ts';
import { PayloadSchemas } from './payload-schema.ts';
import { patternMatches } from '../webhooks/event-patterns.ts';
import { parse, storable, storableText, text, UNSTORABLE_TEXT } from '../input.ts';
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
  group: text(100),
  description: storableText(2000).nullish(),
  deprecated: z.boolean().nullish(),
  /** null clears it; omitted keeps it. */
  schema: z.record(z.string(), z.unknown()).refine(storable, UNSTORABLE_TEXT).nullish(),
  /** null clears them; omitted keeps them. */
  fieldScopes: fieldScopes.nullish(),
});
export type UpsertEventTypeInput = Omit<z.input<typeof upsertEventTypeInput>, 'schema'> & {
  schema?: unknown;
};

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
  private readonly schemas = new PayloadSchemas();

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

  /**
   * The catalog entry for a type about to be published, with its payload checked against the
   * type's schema; throws UnknownEventTypeError or InvalidInputError.
   */
  /** The fields of a type's payload that need a scope; none for a type not in the catalog. */
  async fieldScopes(name: string): Promise<FieldScope[]> {
    return (await this.catalog()).get(name)?.fieldScopes ?? [];
  }

  /** The catalog's types, by name. */
  async types(): Promise<ReadonlyMap<string, EventType>> {
    return this.catalog();
  }

  async require(name: string, path: string[], current: unknown): Promise<EventType> {
    // A miss may be a type another process just added: reload, but at most once a second.
    const type =
      (await this.catalog()).get(name) ??
      (Date.now() - this.loadedAt > 1_000 ? (await this.catalog(true)).get(name) : undefined);
    if (!type) throw new UnknownEventTypeError(path, name);
    if (type.schema) {
      const problems = this.schemas.problemsWithPayload(type.schema, current ?? null, ['input', 'current']);
      if (problems.length > 0) throw new InvalidInputError(problems);
    }
    return type;
  }

  /**
   * Problems with a webhook's subscriptions, by index: a type must be in the catalog and not
   * deprecated; a pattern must match at least one such type.
   */
  async checkSubscriptions(_actor: Actor, patterns: readonly string[]): Promise<FieldProblem[]> {
    const matchesAll = (catalog: Map<string, EventType>) =>
      patterns.every((pattern) =>
        [...catalog.values()].some((t) => !t.deprecated && patternMatches(pattern, t.name)),
      );
    let catalog = await this.catalog();
    // A miss may be a type another process just added: reload, at most once a second.
    if (!matchesAll(catalog) && Date.now() - this.loadedAt > 1_000) catalog = await this.catalog(true);
    const live = [...catalog.values()].filter((type) => !type.deprecated);
    const problems: FieldProblem[] = [];
    patterns.forEach((pattern, index) => {
      if (live.some((type) => patternMatches(pattern, type.name))) return;
      const known = live.length > 0 && pattern.includes('*');
      problems.push({
        path: [String(index)],
        message: known
          ? `"${pattern}" matches no event type`
          : `"${pattern}" is not an event type in the catalog, or it is deprecated`,
      });
    });
    return problems;
  }

  async upsert(actor: Actor, raw: UpsertEventTypeInput): Promise<EventType> {
    demand(actor, 'catalog.manage');
    const input = parse(upsertEventTypeInput, raw);
    const schemaProblems = input.schema
      ? this.schemas.problemsWithSchema(input.schema, ['input', 'schema'])
      : [];
    if (schemaProblems.length > 0) throw new InvalidInputError(schemaProblems);
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
      if (input.schema !== undefined) entry.schema = input.schema;
      if (input.fieldScopes !== undefined) entry.fieldScopes = input.fieldScopes;
      const changed = changes(before, entry, [
        'name',
        'group',
        'description',
        'deprecated',
        'schema',
        'fieldScopes',
      ]);
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
