import { Webhook } from 'standardwebhooks';
import { describe, expect, it } from 'vitest';
import { signatureHeaders } from '../../src/deliveries/signing.ts';
import { newWebhookSecret } from '../../src/webhooks/webhook-secret.ts';

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
