import { v7 } from 'uuid';

/** UUIDv7 primary keys: time-ordered, so new rows land at the end of the index. */
export const newId = (): string => v7();

/** The least UUIDv7 of `at`'s millisecond: every id Herald made before `at` sorts below it. */
export const firstIdAt = (at: Date): string => v7({ msecs: at.getTime(), random: new Uint8Array(16) });
