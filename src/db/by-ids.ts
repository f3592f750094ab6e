import type { EntityName, FilterQuery } from '@mikro-orm/core';
import { z } from 'zod';
import type { EntityManager } from './orm.ts';

const isUuid = (id: string) => z.uuid().safeParse(id).success;

/**
 * The rows with these ids, in the order asked, null for an id that names none (or is no id at
 * all). With a tenant's EntityManager (tenantEm), another tenant's row is none. What GraphQL's
 * node lookups and dataloaders read.
 */
export async function findByIds<T extends { id: string }>(
  em: EntityManager,
  entity: EntityName<T>,
  ids: readonly string[],
): Promise<(T | null)[]> {
  const valid = ids.filter(isUuid);
  const rows = valid.length ? await em.find(entity, { id: { $in: valid } } as unknown as FilterQuery<T>) : [];
  const byId = new Map(rows.map((row) => [row.id, row as T]));
  return ids.map((id) => byId.get(id) ?? null);
}
