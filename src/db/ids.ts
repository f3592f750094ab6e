import { v7 } from 'uuid';

/** UUIDv7 primary keys: time-ordered, so new rows land at the end of the index. */
export const newId = (): string => v7();
