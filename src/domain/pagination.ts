import type { EntityName, FilterQuery, ObjectQuery, OrderDefinition, Transaction } from '@mikro-orm/core';
import type { EntityManager } from '../db/orm.ts';

/** Keyset pagination on (createdAt, id), newest first (DESIGN: GraphQL conventions). */

export const MAX_PAGE = 100;

export interface Cursor {
  createdAt: Date;
  id: string;
}

export interface PageRequest {
  first: number;
  after: Cursor | null;
}

export interface Page<T> {
  items: T[];
  hasNextPage: boolean;
}

/**
 * Rows strictly after the cursor in (createdAt desc, id desc) order. The plain `createdAt <=`
 * bound gives the planner an index range to start from; the `$or` settles ties on createdAt.
 */
export function keysetWhere(after: Cursor | null) {
  if (!after) return {};
  return {
    createdAt: { $lte: after.createdAt },
    $or: [{ createdAt: { $lt: after.createdAt } }, { id: { $lt: after.id } }],
  };
}

/** `createdAt` within [from, to), either end open; nothing when neither is given. */
export function timeRange(range: { from?: Date | null; to?: Date | null }) {
  if (!range.from && !range.to) return {};
  return {
    createdAt: { ...(range.from ? { $gte: range.from } : {}), ...(range.to ? { $lt: range.to } : {}) },
  };
}

/**
 * One page of `entity` matching `where`, newest first, with whether more follow. The rows come
 * back as plain objects, not managed entities: a page is only read, and turning 50 rows into
 * entities (identity map, change-tracking snapshots, an accessor per property) costs as much again
 * as building and running the query. The entity manager's filters, the tenant filter among them,
 * still apply.
 */
export async function findPage<T extends object>(
  em: EntityManager,
  entity: EntityName<T>,
  where: object,
  page: PageRequest,
): Promise<Page<T>> {
  const filtered = await em.applyFilters<T>(
    entity,
    { $and: [where, keysetWhere(page.after)] } as FilterQuery<T>,
    undefined,
    'read',
  );
  const rows = (await em.getDriver().find<T>(entity, (filtered ?? {}) as ObjectQuery<T>, {
    orderBy: { createdAt: 'desc', id: 'desc' } as OrderDefinition<T>,
    limit: page.first + 1,
    ctx: em.getTransactionContext<Transaction<object>>(),
  })) as T[];
  return { items: rows.slice(0, page.first), hasNextPage: rows.length > page.first };
}
