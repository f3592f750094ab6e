import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SCHEDULE_MS,
  defaultRetryPolicy,
  delayAfter,
  retryAfterMs,
} from '../src/delivery/retry-schedule.ts';
import { signatureHeaders } from '../src/delivery/signing.ts';
import { newWebhookSecret } from '../src/domain/webhooks/webhook-secret.ts';

describe('signing', () => {
  const body = JSON.stringify({ id: 'evt', type: 'invoices.invoice.paid', current: { id: 1 } });

  it('produces headers any Standard Webhooks library verifies', () => {
    const secret = newWebhookSecret();
    const headers = signatureHeaders([secret], 'msg_1', new Date(), body);
    expect(headers['webhook-id']).toBe('msg_1');
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(() => new Webhook(newWebhookSecret()).verify(body, { ...headers })).toThrow();
    expect(() => new Webhook(secret).verify(`${body} `, { ...headers })).toThrow();
  });

  it('signs with the old and the new secret during a rotation', () => {
    const [before, after] = [newWebhookSecret(), newWebhookSecret()];
    const headers = signatureHeaders([after, before], 'msg_2', new Date(), body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(before).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(new Webhook(after).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });
});

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
