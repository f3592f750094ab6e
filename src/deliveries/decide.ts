import type { Settlement } from './delivery-store.ts';
import type { AttemptOutcome } from './http-client.ts';
import { delayAfter, retryAfterMs, type RetryPolicy } from './retry-schedule.ts';

/**
 * The one place that decides what an attempt's outcome means: done, try again later, or give up
 * (and whether the endpoint asked to be switched off). `attempts` counts this attempt too.
 */
export function decide(
  outcome: AttemptOutcome,
  attempts: number,
  policy: RetryPolicy,
  now: Date,
  random: () => number = Math.random,
): Settlement {
  if (outcome.kind === 'response' && outcome.statusCode >= 200 && outcome.statusCode < 300) {
    return { status: 'SUCCEEDED' };
  }
  const reason =
    outcome.kind === 'response' ? `HTTP ${outcome.statusCode}` : `${outcome.errorClass}: ${outcome.message}`;
  if (outcome.kind === 'response' && outcome.statusCode === 410) {
    return { status: 'FAILED', reason, disableWebhook: 'the endpoint answered 410 Gone' };
  }
  const scheduled = delayAfter(attempts, policy, random);
  if (scheduled === null)
    return {
      status: 'FAILED',
      reason: `${reason}; gave up after ${attempts} attempts`,
      disableWebhook: null,
    };
  const asked =
    outcome.kind === 'response' && (outcome.statusCode === 429 || outcome.statusCode === 503)
      ? retryAfterMs(outcome.headers['retry-after'], policy, now.getTime())
      : null;
  return { status: 'RETRYING', nextAttemptAt: new Date(now.getTime() + (asked ?? scheduled)), reason };
}
