import type { AttemptOutcome } from './http-client.ts';

/**
 * Where Herald decides what becomes of a delivery: after an attempt, whether it succeeded, is
 * tried again (when), or is given up, and whether its webhook is switched off; and when a delivery
 * that was not attempted (its endpoint's circuit open, or no slot free) comes back. Pure: the
 * worker records what this decides (DESIGN: Delivery semantics).
 */

const SECOND = 1_000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

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
  /** A webhook failing without a success for this long is disabled. */
  autoDisableAfterMs: number;
}

export const defaultRetryPolicy: RetryPolicy = {
  scheduleMs: DEFAULT_SCHEDULE_MS,
  jitter: 0.2,
  retryAfterMinMs: SECOND,
  retryAfterMaxMs: 10 * HOUR,
  autoDisableAfterMs: 5 * DAY,
};

/**
 * Switch the webhook off, with this reason. With `failingSince`, only while the webhook is still
 * failing since then or earlier: a success recorded meanwhile by another attempt keeps it on.
 */
export interface Disable {
  reason: string;
  failingSince?: Date | null;
}

export type Settlement =
  | { status: 'SUCCEEDED' }
  | { status: 'RETRYING'; nextAttemptAt: Date; reason: string; disableWebhook: Disable | null }
  | { status: 'FAILED'; reason: string; disableWebhook: Disable | null };

/** What the decision knows of the webhook: since when it has failed without a success, if it has. */
export interface WebhookHealth {
  failingSince?: Date | null;
}

export const succeeded = (outcome: AttemptOutcome): boolean =>
  outcome.kind === 'response' && outcome.statusCode >= 200 && outcome.statusCode < 300;

/**
 * What an attempt's outcome means: any 2xx succeeds; 410 Gone fails and disables the webhook;
 * anything else is tried again on the schedule (or after the receiver's Retry-After on 429 and
 * 503), then fails. A webhook that has failed without a success for autoDisableAfterMs is
 * disabled by the failure that finds it so. `attempts` counts this attempt too.
 */
export function decide(
  outcome: AttemptOutcome,
  attempts: number,
  webhook: WebhookHealth,
  policy: RetryPolicy,
  now: Date,
  random: () => number = Math.random,
): Settlement {
  if (succeeded(outcome)) return { status: 'SUCCEEDED' };
  const reason =
    outcome.kind === 'response' ? `HTTP ${outcome.statusCode}` : `${outcome.errorClass}: ${outcome.message}`;
  if (outcome.kind === 'response' && outcome.statusCode === 410) {
    return {
      status: 'FAILED',
      reason,
      disableWebhook: { reason: 'the endpoint answered 410 Gone', failingSince: null },
    };
  }
  const disableWebhook = failingTooLong(webhook, policy, now);
  const scheduled = delayAfter(attempts, policy, random);
  if (scheduled === null)
    return { status: 'FAILED', reason: `${reason}; gave up after ${attempts} attempts`, disableWebhook };
  const asked =
    outcome.kind === 'response' && (outcome.statusCode === 429 || outcome.statusCode === 503)
      ? retryAfterMs(outcome.headers['retry-after'], policy, now.getTime())
      : null;
  return {
    status: 'RETRYING',
    nextAttemptAt: new Date(now.getTime() + (asked ?? scheduled)),
    reason,
    disableWebhook,
  };
}

/** Auto-disable: failing continuously, with no success in between, for autoDisableAfterMs. */
function failingTooLong(webhook: WebhookHealth, policy: RetryPolicy, now: Date): Disable | null {
  const since = webhook.failingSince;
  if (!since || now.getTime() - since.getTime() < policy.autoDisableAfterMs) return null;
  return { reason: `failing continuously since ${since.toISOString()}`, failingSince: since };
}

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

/**
 * When a delivery not attempted comes back, holding neither a slot nor a message meanwhile (the
 * isolation of one endpoint from the others, isolation.ts). It does not count as an attempt.
 */
export const parkUntil = {
  /**
   * The endpoint's circuit is open: after the pause, spread over one more, so its parked
   * deliveries do not all come back at the same moment.
   */
  circuitOpen: (openUntil: number, openMs: number, random: () => number = Math.random): Date =>
    new Date(openUntil + random() * openMs),
  /** No slot came free in time (its line was full, or the circuit opened meanwhile): within a second. */
  noSlot: (openUntil: number | null, now: number, random: () => number = Math.random): Date =>
    new Date((openUntil ?? now + 200) + random() * 800),
};
