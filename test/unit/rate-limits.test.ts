import { describe, expect, it } from 'vitest';
import { operatorActor, systemActor, type Actor } from '../../src/tenancy/actor.ts';
import { RateLimits } from '../../src/tenancy/rate-limits.ts';

const token = (tokenId: string, requestsPerSecond: number | null = null): Actor => ({
  ...systemActor('t'),
  kind: 'token',
  tokenId,
  requestsPerSecond,
});

describe('rate limits', () => {
  it('lets a token burst twice its rate, then one request per 1/rate seconds', () => {
    const limits = new RateLimits({ defaultPerSecond: 5 });
    const a = token('a');
    const waits = Array.from({ length: 12 }, () => limits.take(a, 0));
    expect(waits.filter((w) => w === 0)).toHaveLength(10);
    expect(waits.slice(10)).toEqual([200, 200]);
    expect(limits.take(a, 199)).toBe(1);
    expect(limits.take(a, 200)).toBe(0);
    expect(limits.take(a, 200)).toBe(200);
  });

  it("keeps each token to its own bucket, at its plan's rate", () => {
    const limits = new RateLimits({ defaultPerSecond: 1 });
    const hog = token('hog');
    for (let i = 0; i < 2; i++) expect(limits.take(hog, 0)).toBe(0);
    expect(limits.take(hog, 0)).toBeGreaterThan(0);
    expect(limits.take(token('bystander'), 0)).toBe(0);
    const big = token('big', 100);
    expect(Array.from({ length: 200 }, () => limits.take(big, 0)).every((w) => w === 0)).toBe(true);
    expect(limits.take(big, 0)).toBe(10);
  });

  it('does not limit the operator', () => {
    const limits = new RateLimits({ defaultPerSecond: 1 });
    expect(Array.from({ length: 50 }, () => limits.take(operatorActor('op'), 0)).every((w) => w === 0)).toBe(
      true,
    );
  });
});
