import { describe, expect, it } from 'vitest';
import { retryBackoffMs } from '../../src/util/backoff.ts';

describe('retry backoff', () => {
  it('waits 250 ms after the first try, doubling, at most 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(retryBackoffMs)).toEqual([
      250, 500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000,
    ]);
    expect(retryBackoffMs(1_000)).toBe(30_000);
  });

  it('treats a count below one as the first try', () => {
    expect(retryBackoffMs(0)).toBe(250);
  });
});
