import { InvalidInputError } from '../errors.ts';

/** The live streams a subscription can resume in; a cursor is only valid in its own. */
export type LiveKind = 'events' | 'attempts' | 'audit';

/** What live items carry besides their fields: where they sit in their stream. */
export interface Streamed {
  /** Set on items from a subscription; null on items read by queries. */
  streamCursor?: string;
}

export const encodeCursor = (kind: LiveKind, seq: number): string =>
  Buffer.from(`${kind}:${seq}`).toString('base64url');

/** The stream sequence in a cursor of `kind`; InvalidInputError for anything else. */
export function decodeCursor(kind: LiveKind, cursor: string): number {
  const [prefix, seq, ...rest] = Buffer.from(cursor, 'base64url').toString().split(':');
  const value = Number(seq);
  if (prefix !== kind || rest.length > 0 || !Number.isSafeInteger(value) || value < 0) {
    throw new InvalidInputError([{ path: ['after'], message: 'not a cursor of this subscription' }]);
  }
  return value;
}
