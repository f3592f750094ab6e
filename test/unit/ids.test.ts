import { validate, version } from 'uuid';
import { describe, expect, it } from 'vitest';
import { firstIdAt, newId } from '../../src/db/ids.ts';

describe('ids', () => {
  it('are distinct UUIDv7s across many refills of the random pool, and sort by their millisecond', () => {
    const before = newId();
    const at = new Date(Date.now() + 2);
    while (Date.now() < at.getTime()) newId();
    const ids = Array.from({ length: 2_000 }, newId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(validate(id) && version(id)).toBe(7);
    const bound = firstIdAt(at);
    expect(before < bound).toBe(true);
    expect(ids.every((id) => id >= bound)).toBe(true);
  });
});
