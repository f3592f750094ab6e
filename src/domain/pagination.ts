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
