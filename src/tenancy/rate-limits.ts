import { LRUCache } from 'lru-cache';
import type { Actor } from './actor.ts';

interface Bucket {
  tokens: number;
  at: number;
}

/**
 * Per-token rate limits on the API: a token bucket per token, refilled at its tenant plan's
 * requests a second (or the configured default) and holding twice that, so a client may burst
 * for a second. Kept per process: with N API processes behind a balancer a token gets about N
 * times its rate. The operator is not limited.
 */
export class RateLimits {
  private readonly defaultPerSecond: number;
  private readonly buckets = new LRUCache<string, Bucket>({ max: 100_000 });

  constructor(options: { defaultPerSecond: number }) {
    this.defaultPerSecond = options.defaultPerSecond;
  }

  /** Takes one request from the actor's bucket: 0 when it may go now, else how many ms until it may. */
  take(actor: Actor, now = performance.now()): number {
    if (!actor.tokenId) return 0;
    return this.takeFrom(actor.tokenId, actor.requestsPerSecond ?? this.defaultPerSecond, now);
  }

  /** Takes one request from the bucket of `key` (a token, an inbound source) refilled at `rate` a second. */
  takeFrom(key: string, rate: number, now = performance.now()): number {
    const capacity = 2 * rate;
    const bucket = this.buckets.get(key) ?? { tokens: capacity, at: now };
    bucket.tokens = Math.min(capacity, bucket.tokens + ((now - bucket.at) / 1000) * rate);
    bucket.at = now;
    this.buckets.set(key, bucket);
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - bucket.tokens) / rate) * 1000);
  }
}
