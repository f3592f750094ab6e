import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
import { LRUCache } from 'lru-cache';

export interface SignedHeaders {
  'webhook-id': string;
  'webhook-timestamp': string;
  'webhook-signature': string;
}

/**
 * Standard Webhooks headers for one attempt. `webhook-id` is the delivery's id, the same on every
 * retry, so receivers can drop duplicates; during a secret rotation every live secret signs and
 * the signatures are space-separated, as the standard allows.
 *
 * The signature is `v1,` + base64 HMAC-SHA256 of `id.timestamp.body` under the secret's bytes
 * (base64 after `whsec_`), computed with node:crypto: the reference library's pure-JS hash costs
 * more than the rest of an attempt's CPU. Tests verify it with that library. Each secret's key
 * object is made once: HMAC with a raw buffer key costs four times as much.
 */
export function signatureHeaders(
  secrets: readonly string[],
  id: string,
  at: Date,
  body: string,
): SignedHeaders {
  const timestamp = String(Math.floor(at.getTime() / 1000));
  const signed = `${id}.${timestamp}.${body}`;
  return {
    'webhook-id': id,
    'webhook-timestamp': timestamp,
    'webhook-signature': secrets
      .map((secret) => `v1,${createHmac('sha256', keyOf(secret)).update(signed).digest('base64')}`)
      .join(' '),
  };
}

const keys = new LRUCache<string, KeyObject>({ max: 10_000 });

function keyOf(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    key = createSecretKey(Buffer.from(secret.replace(/^whsec_/, ''), 'base64'));
    keys.set(secret, key);
  }
  return key;
}
