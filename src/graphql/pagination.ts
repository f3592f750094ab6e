import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';
import { storableDate } from '../input.ts';
import { MAX_PAGE, type Cursor, type Page, type PageRequest } from '../pagination.ts';

/** Connections take `first` (1–100, default 50) and an opaque `after`; they page forwards only. */

export const DEFAULT_PAGE = 50;

const encodeCursor = (row: Cursor) =>
  Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');

function decodeCursor(cursor: string): Cursor {
  const [at, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const createdAt = new Date(at ?? '');
  if (!id || !z.uuid().safeParse(id).success || !storableDate(createdAt)) {
    throw new InvalidInputError([{ path: ['after'], message: 'not a cursor from this connection' }]);
  }
  return { createdAt, id };
}

export function pageRequest(args: { first?: number | null; after?: string | null }): PageRequest {
  return { first: args.first ?? DEFAULT_PAGE, after: args.after ? decodeCursor(args.after) : null };
}

export function toConnection<T extends Cursor>(page: Page<T>) {
  const edges = page.items.map((node) => ({ cursor: encodeCursor(node), node }));
  return {
    edges,
    pageInfo: {
      hasNextPage: page.hasNextPage,
      hasPreviousPage: false,
      startCursor: edges[0]?.cursor ?? null,
      endCursor: edges.at(-1)?.cursor ?? null,
    },
  };
}

export const firstArg = z.number().int().min(1).max(MAX_PAGE).nullish();
