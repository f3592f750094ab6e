import { describe, expect, it } from 'vitest';
import type { AttemptOutcome } from '../../src/deliveries/http-client.ts';
import {
  DEFAULT_SCHEDULE_MS,
  decide,
  defaultRetryPolicy,
  delayAfter,
  parkUntil,
  retryAfterMs,
} from '../../src/deliveries/outcome.ts';

const now = new Date('2026-11-23T10:00:00Z');
const response = (statusCode: number, headers: Record<string, string> = {}): AttemptOutcome => ({
  kind: 'response',
  statusCode,
  headers,
  body: '',
  durationMs: 12,
});
const timeout: AttemptOutcome = {
  kind: 'error',
  errorClass: 'timeout',
  message: 'no answer',
  durationMs: 15_000,
};
const healthy = { failingSince: null };
const middle = () => 0.5;

describe('retry schedule', () => {
  it('follows the schedule with bounded jitter, then gives up', () => {
    expect(DEFAULT_SCHEDULE_MS).toEqual([
      0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
    expect(delayAfter(1, defaultRetryPolicy, () => 0.5)).toBe(5_000);
    expect(delayAfter(1, defaultRetryPolicy, () => 0)).toBe(4_000);
    expect(delayAfter(1, defaultRetryPolicy, () => 1)).toBe(6_000);
    expect(delayAfter(7, defaultRetryPolicy, () => 0.5)).toBe(36_000_000);
    expect(delayAfter(8, defaultRetryPolicy)).toBeNull();
  });

  it('reads Retry-After as seconds or a date, within bounds', () => {
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(retryAfterMs('120', defaultRetryPolicy, now)).toBe(120_000);
    expect(retryAfterMs('Mon, 23 Nov 2026 10:05:00 GMT', defaultRetryPolicy, now)).toBe(300_000);
    expect(retryAfterMs('0', defaultRetryPolicy, now)).toBe(1_000);
    expect(retryAfterMs('999999999', defaultRetryPolicy, now)).toBe(36_000_000);
    expect(retryAfterMs('soon', defaultRetryPolicy, now)).toBeNull();
    expect(retryAfterMs(undefined, defaultRetryPolicy, now)).toBeNull();
  });
});

describe('decide', () => {
  it('succeeds on any 2xx, whatever came before', () => {
    for (const code of [200, 201, 204, 299]) {
      expect(decide(response(code), 3, { failingSince: new Date(0) }, defaultRetryPolicy, now)).toEqual({
        status: 'SUCCEEDED',
      });
    }
  });

  it('retries anything else on the schedule, saying why', () => {
    for (const [outcome, reason] of [
      [response(500), 'HTTP 500'],
      [response(301), 'HTTP 301'],
      [response(404), 'HTTP 404'],
      [timeout, 'timeout: no answer'],
    ] as const) {
      expect(decide(outcome, 1, healthy, defaultRetryPolicy, now, middle)).toEqual({
        status: 'RETRYING',
        nextAttemptAt: new Date(now.getTime() + 5_000),
        reason,
        disableWebhook: null,
      });
    }
    const third = decide(response(500), 3, healthy, defaultRetryPolicy, now, middle);
    expect(third.status === 'RETRYING' && third.nextAttemptAt).toEqual(new Date(now.getTime() + 1_800_000));
  });

  it('gives up after the last attempt of the schedule', () => {
    expect(decide(response(500), 8, healthy, defaultRetryPolicy, now, middle)).toEqual({
      status: 'FAILED',
      reason: 'HTTP 500; gave up after 8 attempts',
      disableWebhook: null,
    });
    const short = { ...defaultRetryPolicy, scheduleMs: [0] };
    expect(decide(timeout, 1, healthy, short, now).status).toBe('FAILED');
  });

  it("follows a 429's or a 503's Retry-After within bounds, and no other status's", () => {
    const asked = (code: number) =>
      decide(response(code, { 'retry-after': '120' }), 1, healthy, defaultRetryPolicy, now, middle);
    expect(asked(429)).toMatchObject({
      status: 'RETRYING',
      nextAttemptAt: new Date(now.getTime() + 120_000),
    });
    expect(asked(503)).toMatchObject({
      status: 'RETRYING',
      nextAttemptAt: new Date(now.getTime() + 120_000),
    });
    expect(asked(500)).toMatchObject({ status: 'RETRYING', nextAttemptAt: new Date(now.getTime() + 5_000) });
    const unreadable = decide(
      response(429, { 'retry-after': 'later' }),
      1,
      healthy,
      defaultRetryPolicy,
      now,
      middle,
    );
    expect(unreadable).toMatchObject({ nextAttemptAt: new Date(now.getTime() + 5_000) });
  });

  it('fails a 410 Gone at once and disables the webhook unconditionally', () => {
    expect(decide(response(410), 1, healthy, defaultRetryPolicy, now)).toEqual({
      status: 'FAILED',
      reason: 'HTTP 410',
      disableWebhook: { reason: 'the endpoint answered 410 Gone', failingSince: null },
    });
  });

  it('disables a webhook failing with no success for the auto-disable period, only from then on', () => {
    const period = defaultRetryPolicy.autoDisableAfterMs;
    const since = new Date(now.getTime() - period);
    const failing = decide(response(500), 2, { failingSince: since }, defaultRetryPolicy, now, middle);
    expect(failing).toMatchObject({
      status: 'RETRYING',
      disableWebhook: { reason: `failing continuously since ${since.toISOString()}`, failingSince: since },
    });
    const lastTry = decide(timeout, 8, { failingSince: since }, defaultRetryPolicy, now);
    expect(lastTry).toMatchObject({ status: 'FAILED', disableWebhook: { failingSince: since } });
    const notYet = new Date(since.getTime() + 1);
    expect(decide(response(500), 2, { failingSince: notYet }, defaultRetryPolicy, now)).toMatchObject({
      disableWebhook: null,
    });
    expect(decide(response(500), 2, {}, defaultRetryPolicy, now)).toMatchObject({ disableWebhook: null });
  });
});

describe('parking a delivery not attempted', () => {
  it('brings the deliveries of an open circuit back spread over one pause after it', () => {
    expect(parkUntil.circuitOpen(1_000, 30_000, () => 0)).toEqual(new Date(1_000));
    expect(parkUntil.circuitOpen(1_000, 30_000, () => 0.999)).toEqual(new Date(1_000 + 29_970));
  });

  it('brings one that found no slot back within a second, or after the circuit that opened meanwhile', () => {
    expect(parkUntil.noSlot(null, 5_000, () => 0)).toEqual(new Date(5_200));
    expect(parkUntil.noSlot(null, 5_000, () => 1)).toEqual(new Date(6_000));
    expect(parkUntil.noSlot(60_000, 5_000, () => 0)).toEqual(new Date(60_000));
  });
});
