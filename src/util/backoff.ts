/**
 * How long before work that failed for a passing reason (a database or bus that did not answer,
 * a statement cancelled) is tried again: 250 ms, doubling with each try, at most 30 s. The one
 * backoff of Herald's own retries: a consumer's retry-later, and a message whose handler threw.
 * (A delivery's attempts follow their own schedule: deliveries/outcome.ts.)
 */
export function retryBackoffMs(tries: number): number {
  return Math.min(30_000, 250 * 2 ** Math.min(Math.max(tries, 1) - 1, 7));
}
