/** When failed attempts are tried again (DESIGN: Delivery semantics). */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/** Delay before each attempt: the first at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h. */
export const DEFAULT_SCHEDULE_MS = [
  0,
  5 * SECOND,
  5 * MINUTE,
  30 * MINUTE,
  2 * HOUR,
  5 * HOUR,
  10 * HOUR,
  10 * HOUR,
];

export interface RetryPolicy {
  scheduleMs: readonly number[];
  /** ±fraction of each delay, so endpoints that failed together do not retry together. */
  jitter: number;
  /** Bounds on a receiver's Retry-After. */
  retryAfterMinMs: number;
  retryAfterMaxMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  scheduleMs: DEFAULT_SCHEDULE_MS,
  jitter: 0.2,
  retryAfterMinMs: SECOND,
  retryAfterMaxMs: 10 * HOUR,
};

/** The delay before attempt `attempt + 1` after `attempt` attempts failed, or null when none is left. */
export function delayAfter(
  attempt: number,
  policy: RetryPolicy,
  random: () => number = Math.random,
): number | null {
  const base = policy.scheduleMs[attempt];
  if (base === undefined) return null;
  return Math.round(base * (1 + policy.jitter * (2 * random() - 1)));
}

/**
 * A receiver's Retry-After (seconds or an HTTP date), clamped to the policy's bounds; null when
 * absent or unreadable.
 */
export function retryAfterMs(
  header: string | null | undefined,
  policy: RetryPolicy,
  now = Date.now(),
): number | null {
  if (!header) return null;
  const trimmed = header.trim();
  const ms = /^\d+$/.test(trimmed) ? Number(trimmed) * SECOND : Date.parse(trimmed) - now;
  if (Number.isNaN(ms)) return null;
  return Math.min(policy.retryAfterMaxMs, Math.max(policy.retryAfterMinMs, ms));
}
