import { v7 } from 'uuid';

/**
 * Random bytes for ids, drawn 4 KiB at a time: one getRandomValues call per id (what `uuid` does
 * by default) cost a few percent of a worker's CPU on the delivery path.
 */
const pool = new Uint8Array(4096);
let taken = pool.length;

function random16(): Uint8Array {
  if (taken === pool.length) {
    crypto.getRandomValues(pool);
    taken = 0;
  }
  return pool.subarray(taken, (taken += 16));
}

/**
 * UUIDv7 primary keys: time-ordered, so new rows land at the end of the index. Within one
 * millisecond the order is random.
 */
export const newId = (): string => v7({ random: random16() });

/** The least UUIDv7 of `at`'s millisecond: every id Herald made before `at` sorts below it. */
export const firstIdAt = (at: Date): string => v7({ msecs: at.getTime(), random: new Uint8Array(16) });

/** The millisecond a UUIDv7 was made at (its first 48 bits); null for another version. */
export const idTime = (id: string): number | null =>
  id[14] === '7' ? Number.parseInt(id.slice(0, 8) + id.slice(9, 13), 16) : null;
