import { createHmac } from 'node:crypto';
import { sign } from '@octokit/webhooks-methods';
import { Webhook } from 'standardwebhooks';
import Stripe from 'stripe';
import { describe, expect, it } from 'vitest';
import {
  secretProblem,
  verificationInput,
  verify,
  type Verification,
  type VerificationPreset,
} from '../../src/inbound/verification.ts';

const stripe = new Stripe('sk_test_herald');
const preset = (name: VerificationPreset, rest: Partial<Verification> = {}): Verification => ({
  preset: name,
  hmac: null,
  apiKeyHeader: null,
  ...rest,
});
const now = new Date();
const request = (headers: Record<string, string>, body: string | Buffer, receivedAt = now) => ({
  headers,
  body: Buffer.isBuffer(body) ? body : Buffer.from(body),
  receivedAt,
});
const body = JSON.stringify({ id: 'evt_1', type: 'invoice.paid', data: { total: 1230 } });

/** Every check a preset must pass: the oracle's signature passes, tampering in any way fails. */
function expectExactly(v: Verification, secret: string, headers: Record<string, string>, signed = body) {
  expect(verify(v, [secret], request(headers, signed))).toMatchObject({ verified: true });
  expect(verify(v, [secret], request(headers, `${signed} `))).toMatchObject({ verified: false });
  // Another key: base64 decoding would read past a suffix added to a whsec_ secret.
  const wrong =
    v.preset === 'STANDARD_WEBHOOKS' ? 'whsec_b3RoZXIgdGVzdCBzZWNyZXQga2V5IGhlcmU=' : `${secret}x`;
  expect(verify(v, [wrong], request(headers, signed))).toMatchObject({ verified: false });
  for (const name of Object.keys(headers)) {
    const { [name]: _gone, ...rest } = headers;
    expect(verify(v, [secret], request(rest, signed))).toMatchObject({
      verified: false,
      reason: expect.stringMatching(/missing/) as string,
    });
  }
}

describe('inbound verification against the providers’ own signers', () => {
  it('STRIPE: what stripe-node signs, within five minutes', () => {
    const secret = 'whsec_test_secret';
    const timestamp = Math.floor(now.getTime() / 1000);
    const header = stripe.webhooks.generateTestHeaderString({ payload: body, secret, timestamp });
    expectExactly(preset('STRIPE'), secret, { 'stripe-signature': header });
    const stale = stripe.webhooks.generateTestHeaderString({
      payload: body,
      secret,
      timestamp: timestamp - 301,
    });
    expect(verify(preset('STRIPE'), [secret], request({ 'stripe-signature': stale }, body))).toMatchObject({
      verified: false,
      reason: expect.stringMatching(/tolerance 300 s/) as string,
    });
  });

  it('GITHUB: what @octokit/webhooks-methods signs, over the exact bytes', async () => {
    const secret = 'It’s a Secret to Everybody';
    expectExactly(preset('GITHUB'), secret, { 'x-hub-signature-256': await sign(secret, body) });
  });

  it('STANDARD_WEBHOOKS: what the standardwebhooks library signs, several signatures, rotation', () => {
    const [old, current] = [
      'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw',
      'whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IGtleSE=',
    ];
    const signature = new Webhook(current).sign('msg_1', now, body);
    const headers = { 'webhook-id': 'msg_1', 'webhook-timestamp': String(Math.floor(now.getTime() / 1000)) };
    expectExactly(preset('STANDARD_WEBHOOKS'), current, { ...headers, 'webhook-signature': signature });
    const both = `${new Webhook(old).sign('msg_1', now, body)} ${signature}`;
    expect(
      verify(
        preset('STANDARD_WEBHOOKS'),
        [old, current],
        request({ ...headers, 'webhook-signature': both }, body),
      ),
    ).toMatchObject({ verified: true, detail: expect.stringMatching(/secret 1 of 2/) as string });
  });

  it('SHOPIFY and SLACK: per their documentation (no official signer to run)', () => {
    const secret = 'shpss_0123456789abcdef';
    const shopify = createHmac('sha256', secret).update(body).digest('base64');
    expectExactly(preset('SHOPIFY'), secret, { 'x-shopify-hmac-sha256': shopify });
    const ts = String(Math.floor(now.getTime() / 1000));
    const slack = `v0=${createHmac('sha256', secret).update(`v0:${ts}:${body}`).digest('hex')}`;
    expectExactly(preset('SLACK'), secret, { 'x-slack-signature': slack, 'x-slack-request-timestamp': ts });
  });

  it('HMAC: every algorithm and encoding over non-UTF-8 and XML bodies, with a timestamp template', () => {
    const bodies = [Buffer.from([0xff, 0xfe, 0x00, 0x80]), Buffer.from('<a b="1">Zażółć</a>', 'latin1')];
    for (const algorithm of ['SHA1', 'SHA256', 'SHA512'] as const) {
      for (const encoding of ['HEX', 'BASE64'] as const) {
        const v = verificationInput.parse({
          preset: 'HMAC',
          hmac: {
            algorithm,
            encoding,
            header: 'X-Signature',
            prefix: 'sig=',
            signedContent: '{timestamp}:{body}',
            timestampHeader: 'X-Timestamp',
          },
        });
        for (const raw of bodies) {
          const ts = String(Math.floor(now.getTime() / 1000));
          const mac = createHmac(algorithm.toLowerCase(), 'k'.repeat(128))
            .update(Buffer.concat([Buffer.from(`${ts}:`), raw]))
            .digest(encoding === 'HEX' ? 'hex' : 'base64');
          const headers = { 'x-signature': `sig=${mac}`, 'x-timestamp': ts };
          expect(verify(v, ['k'.repeat(128)], request(headers, raw))).toMatchObject({ verified: true });
          const flipped = Buffer.from(raw);
          flipped[0]! ^= 1;
          expect(verify(v, ['k'.repeat(128)], request(headers, flipped))).toMatchObject({ verified: false });
          expect(
            verify(v, ['k'.repeat(128)], request(headers, raw, new Date(now.getTime() + 400_000))),
          ).toMatchObject({ verified: false, reason: expect.stringMatching(/tolerance/) as string });
        }
      }
    }
  });

  it('BASIC, API_KEY and NONE', () => {
    const basic = `Basic ${Buffer.from('flowtly:pa:ss').toString('base64')}`;
    expect(verify(preset('BASIC'), ['flowtly:pa:ss'], request({ authorization: basic }, body)).verified).toBe(
      true,
    );
    expect(verify(preset('BASIC'), ['flowtly:other'], request({ authorization: basic }, body)).verified).toBe(
      false,
    );
    const key = verificationInput.parse({ preset: 'API_KEY' });
    expect(key.apiKeyHeader).toBe('x-api-key');
    expect(verify(key, ['k1'], request({ 'x-api-key': 'k1' }, body)).verified).toBe(true);
    expect(verify(key, ['k1'], request({ 'x-api-key': 'k2' }, body)).verified).toBe(false);
    const bearer = verificationInput.parse({ preset: 'API_KEY', apiKeyHeader: 'Authorization' });
    expect(verify(bearer, ['k1'], request({ authorization: 'Bearer k1' }, body)).verified).toBe(true);
    expect(verify(preset('NONE'), [], request({}, body)).verified).toBe(true);
  });

  it('never throws on what a sender puts in a header', () => {
    const garbage = ['', ' ', 'sha256=zz', 't=,v1=', 't=abc,v1=00', 'v1,@@@', '='.repeat(10_000), 'v0=xyz'];
    for (const name of ['STRIPE', 'GITHUB', 'SHOPIFY', 'SLACK', 'STANDARD_WEBHOOKS'] as const) {
      for (const value of garbage) {
        const headers = {
          'stripe-signature': value,
          'x-hub-signature-256': value,
          'x-shopify-hmac-sha256': value,
          'x-slack-signature': value,
          'x-slack-request-timestamp': value,
          'webhook-signature': value,
          'webhook-id': value,
          'webhook-timestamp': value,
        };
        expect(
          verify(preset(name), ['whsec_dGhpcyBpcyBhIHRlc3Qgc2VjcmV0IGtleSE='], request(headers, body)),
        ).toMatchObject({ verified: false });
      }
    }
    expect(verify(preset('BASIC'), ['a:b'], request({ authorization: 'Basic !!!' }, body)).verified).toBe(
      false,
    );
  });

  it('refuses profiles and secrets that cannot work', () => {
    const problems = (value: unknown) =>
      verificationInput.safeParse(value).error?.issues.map((i) => `${i.path.join('.')}: ${i.message}`) ?? [];
    expect(problems({ preset: 'HMAC' })).toEqual(['hmac: required for HMAC: at least its header']);
    expect(problems({ preset: 'GITHUB', hmac: { header: 'x' } })).toEqual([
      'hmac: only for HMAC; GITHUB has its own profile',
    ]);
    expect(problems({ preset: 'HMAC', hmac: { header: 'x', signedContent: '{timestamp}.{body}' } })).toEqual([
      'hmac.timestampHeader: required: signedContent uses {timestamp}',
    ]);
    expect(problems({ preset: 'HMAC', hmac: { header: 'x', signedContent: '{nonce}{body}' } })).toEqual([
      'hmac.signedContent: unknown placeholder {nonce}',
    ]);
    expect(problems({ preset: 'HMAC', hmac: { header: 'bad header' } })).toEqual([
      'hmac.header: must be an HTTP header name',
    ]);
    expect(secretProblem('HMAC', 'k'.repeat(129))).toMatch(/1 to 128/);
    expect(secretProblem('HMAC', 'k'.repeat(128))).toBeNull();
    expect(secretProblem('STANDARD_WEBHOOKS', 'whsec_short')).toMatch(/base64 of 24 to 64 bytes/);
    expect(secretProblem('BASIC', ':password')).toMatch(/user:password/);
    expect(secretProblem('NONE', 'x')).toMatch(/no secret/);
    expect(secretProblem('STRIPE', 'sk_live_x')).toMatch(/whsec_/);
  });
});
