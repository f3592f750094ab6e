import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';

/**
 * Verification of incoming webhooks as data, not code per provider: one engine over node:crypto
 * driven by a profile (where the signature is and how it is written, what is signed, the
 * algorithm, the key, the timestamp and its tolerance). Presets are profiles. Every comparison is
 * constant-time; nothing a sender puts in a header makes it throw.
 */

export const verificationPresets = [
  'STRIPE',
  'GITHUB',
  'SHOPIFY',
  'SLACK',
  'STANDARD_WEBHOOKS',
  'HMAC',
  'BASIC',
  'API_KEY',
  'NONE',
] as const;
export type VerificationPreset = (typeof verificationPresets)[number];
export const hmacAlgorithms = ['SHA1', 'SHA256', 'SHA512'] as const;
export const signatureEncodings = ['HEX', 'BASE64'] as const;

/** The custom HMAC profile (preset HMAC). */
export interface HmacSettings {
  algorithm: (typeof hmacAlgorithms)[number];
  encoding: (typeof signatureEncodings)[number];
  /** The header holding the signature, lower-case. */
  header: string;
  /** Stripped before decoding, e.g. `sha256=`. */
  prefix: string | null;
  /** What is signed, over `{body}`, `{timestamp}` and `{id}`. */
  signedContent: string;
  timestampHeader: string | null;
  idHeader: string | null;
  /** With a timestamp: how far from now it may be. */
  toleranceSeconds: number | null;
}

export interface Verification {
  preset: VerificationPreset;
  /** Preset HMAC only. */
  hmac: HmacSettings | null;
  /** Preset API_KEY only: the header carrying the key; `authorization` means `Bearer <key>`. */
  apiKeyHeader: string | null;
}

/** How signatures sit in their header. */
type Layout =
  | { kind: 'single'; prefix: string | null }
  /** Stripe: `t=<unix>,v1=<sig>,v1=<sig>`; the timestamp comes from the same header. */
  | { kind: 'stripe' }
  /** Standard Webhooks: `v1,<sig> v1,<sig>`. */
  | { kind: 'versioned' };

interface Profile {
  header: string;
  layout: Layout;
  algorithm: 'sha1' | 'sha256' | 'sha512';
  encoding: 'hex' | 'base64';
  signedContent: string;
  timestampHeader: string | null;
  idHeader: string | null;
  toleranceSeconds: number | null;
  /** The secret as given, or base64 after `whsec_` (Standard Webhooks). */
  key: 'utf8' | 'whsec';
}

const DEFAULT_TOLERANCE = 300;

const presets: Partial<Record<VerificationPreset, Profile>> = {
  STRIPE: {
    header: 'stripe-signature',
    layout: { kind: 'stripe' },
    algorithm: 'sha256',
    encoding: 'hex',
    signedContent: '{timestamp}.{body}',
    timestampHeader: null,
    idHeader: null,
    toleranceSeconds: DEFAULT_TOLERANCE,
    key: 'utf8',
  },
  GITHUB: {
    header: 'x-hub-signature-256',
    layout: { kind: 'single', prefix: 'sha256=' },
    algorithm: 'sha256',
    encoding: 'hex',
    signedContent: '{body}',
    timestampHeader: null,
    idHeader: null,
    toleranceSeconds: null,
    key: 'utf8',
  },
  SHOPIFY: {
    header: 'x-shopify-hmac-sha256',
    layout: { kind: 'single', prefix: null },
    algorithm: 'sha256',
    encoding: 'base64',
    signedContent: '{body}',
    timestampHeader: null,
    idHeader: null,
    toleranceSeconds: null,
    key: 'utf8',
  },
  SLACK: {
    header: 'x-slack-signature',
    layout: { kind: 'single', prefix: 'v0=' },
    algorithm: 'sha256',
    encoding: 'hex',
    signedContent: 'v0:{timestamp}:{body}',
    timestampHeader: 'x-slack-request-timestamp',
    idHeader: null,
    toleranceSeconds: DEFAULT_TOLERANCE,
    key: 'utf8',
  },
  STANDARD_WEBHOOKS: {
    header: 'webhook-signature',
    layout: { kind: 'versioned' },
    algorithm: 'sha256',
    encoding: 'base64',
    signedContent: '{id}.{timestamp}.{body}',
    timestampHeader: 'webhook-timestamp',
    idHeader: 'webhook-id',
    toleranceSeconds: DEFAULT_TOLERANCE,
    key: 'whsec',
  },
};

/** An HTTP header name (RFC 9110 token), kept lower-case as node:http gives them. */
export const headerName = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, 'must be an HTTP header name')
  .transform((name) => name.toLowerCase());

const PLACEHOLDERS = /\{(body|timestamp|id)\}/g;

const hmacSettings = z
  .object({
    algorithm: z.enum(hmacAlgorithms).default('SHA256'),
    encoding: z.enum(signatureEncodings).default('HEX'),
    header: headerName,
    prefix: z.string().min(1).max(50).nullish(),
    signedContent: z.string().min(1).max(200).default('{body}'),
    timestampHeader: headerName.nullish(),
    idHeader: headerName.nullish(),
    toleranceSeconds: z.number().int().min(1).max(86_400).nullish(),
  })
  .superRefine((h, ctx) => {
    const unknown = h.signedContent.replace(PLACEHOLDERS, '').match(/\{[^}]*\}/);
    if (unknown) {
      ctx.addIssue({ code: 'custom', path: ['signedContent'], message: `unknown placeholder ${unknown[0]}` });
    }
    if (!h.signedContent.includes('{body}')) {
      ctx.addIssue({ code: 'custom', path: ['signedContent'], message: 'must include {body}' });
    }
    if (h.signedContent.includes('{timestamp}') && !h.timestampHeader) {
      ctx.addIssue({
        code: 'custom',
        path: ['timestampHeader'],
        message: 'required: signedContent uses {timestamp}',
      });
    }
    if (h.signedContent.includes('{id}') && !h.idHeader) {
      ctx.addIssue({ code: 'custom', path: ['idHeader'], message: 'required: signedContent uses {id}' });
    }
  })
  .transform((h): HmacSettings => ({
    algorithm: h.algorithm,
    encoding: h.encoding,
    header: h.header,
    prefix: h.prefix ?? null,
    signedContent: h.signedContent,
    timestampHeader: h.timestampHeader ?? null,
    idHeader: h.idHeader ?? null,
    toleranceSeconds: h.timestampHeader ? (h.toleranceSeconds ?? DEFAULT_TOLERANCE) : null,
  }));

/** A source's verification as given (`{ preset, hmac?, apiKeyHeader? }`), checked. */
export const verificationInput = z
  .object({
    preset: z.enum(verificationPresets),
    hmac: hmacSettings.nullish(),
    apiKeyHeader: headerName.nullish(),
  })
  .superRefine((v, ctx) => {
    if (v.preset === 'HMAC' && !v.hmac) {
      ctx.addIssue({ code: 'custom', path: ['hmac'], message: 'required for HMAC: at least its header' });
    }
    if (v.preset !== 'HMAC' && v.hmac) {
      ctx.addIssue({
        code: 'custom',
        path: ['hmac'],
        message: `only for HMAC; ${v.preset} has its own profile`,
      });
    }
    if (v.preset !== 'API_KEY' && v.apiKeyHeader) {
      ctx.addIssue({ code: 'custom', path: ['apiKeyHeader'], message: 'only for API_KEY' });
    }
  })
  .transform((v): Verification => ({
    preset: v.preset,
    hmac: v.preset === 'HMAC' ? v.hmac! : null,
    apiKeyHeader: v.preset === 'API_KEY' ? (v.apiKeyHeader ?? 'x-api-key') : null,
  }));

/** Any text without control characters: GitHub's own example secret has a curly apostrophe. */
const PRINTABLE = /^[^\p{Cc}\p{Cs}]+$/u;

/** What is wrong with a secret for the preset, or null. */
export function secretProblem(preset: VerificationPreset, secret: string): string | null {
  switch (preset) {
    case 'NONE':
      return 'NONE takes no secret';
    case 'STANDARD_WEBHOOKS': {
      const key = secret.startsWith('whsec_') ? secret.slice(6) : '';
      const bytes = /^[A-Za-z0-9+/]+={0,2}$/.test(key) ? Buffer.from(key, 'base64').length : 0;
      return bytes >= 24 && bytes <= 64 ? null : 'must be whsec_ followed by base64 of 24 to 64 bytes';
    }
    case 'STRIPE':
      return /^whsec_[\x21-\x7e]+$/.test(secret) && secret.length <= 512
        ? null
        : "must be the endpoint's signing secret, whsec_…";
    case 'HMAC':
      return secret.length >= 1 && secret.length <= 128 && PRINTABLE.test(secret)
        ? null
        : 'must be 1 to 128 characters, no control characters';
    case 'BASIC': {
      const colon = secret.indexOf(':');
      return colon > 0 && secret.length <= 255 && PRINTABLE.test(secret)
        ? null
        : 'must be user:password, the user not empty, at most 255 characters, no control characters';
    }
    default:
      return secret.length >= 1 && secret.length <= 512 && PRINTABLE.test(secret)
        ? null
        : 'must be 1 to 512 characters, no control characters';
  }
}

export interface SignedRequest {
  /** Lower-case names, as node:http gives them. */
  headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The exact bytes received. */
  body: Buffer;
  receivedAt: Date;
}

export type VerificationResult = { verified: true; detail: string } | { verified: false; reason: string };

/** Verifies against every live secret (several during a rotation): any one matching passes. */
export function verify(
  verification: Verification,
  secrets: readonly string[],
  request: SignedRequest,
): VerificationResult {
  const { preset } = verification;
  if (preset === 'NONE') return { verified: true, detail: 'no verification (NONE)' };
  if (secrets.length === 0) return { verified: false, reason: 'the source has no live secret' };
  if (preset === 'BASIC' || preset === 'API_KEY') return verifyCredential(verification, secrets, request);
  return verifySignature(preset, profileOf(verification), secrets, request);
}

function profileOf(verification: Verification): Profile {
  const h = verification.hmac;
  if (verification.preset !== 'HMAC' || !h) return presets[verification.preset]!;
  return {
    header: h.header,
    layout: { kind: 'single', prefix: h.prefix },
    algorithm: h.algorithm.toLowerCase() as Profile['algorithm'],
    encoding: h.encoding === 'HEX' ? 'hex' : 'base64',
    signedContent: h.signedContent,
    timestampHeader: h.timestampHeader,
    idHeader: h.idHeader,
    toleranceSeconds: h.toleranceSeconds,
    key: 'utf8',
  };
}

function verifySignature(
  preset: VerificationPreset,
  profile: Profile,
  secrets: readonly string[],
  request: SignedRequest,
): VerificationResult {
  const values = all(request.headers[profile.header]);
  if (values.length === 0) return { verified: false, reason: `missing header ${profile.header}` };
  const parsed = signaturesIn(profile, values);
  if (!parsed) return { verified: false, reason: `malformed header ${profile.header}` };
  const timestamp =
    parsed.timestamp ??
    (profile.timestampHeader ? first(request.headers[profile.timestampHeader]) : undefined);
  if (profile.signedContent.includes('{timestamp}') || profile.toleranceSeconds !== null) {
    const problem = timestampProblem(profile, timestamp, request.receivedAt);
    if (problem) return { verified: false, reason: problem };
  }
  const id = profile.idHeader ? first(request.headers[profile.idHeader]) : undefined;
  if (profile.signedContent.includes('{id}') && !id)
    return { verified: false, reason: `missing header ${profile.idHeader}` };
  const content = signedContent(profile.signedContent, request.body, timestamp ?? '', id ?? '');
  const decoded = parsed.signatures
    .map((s) => decode(s, profile.encoding))
    .filter((s): s is Buffer => s !== null);
  if (decoded.length === 0) return { verified: false, reason: `malformed header ${profile.header}` };
  for (const [index, secret] of secrets.entries()) {
    const key = keyOf(profile, secret);
    if (!key) continue;
    const expected = createHmac(profile.algorithm, key).update(content).digest();
    if (
      decoded.some(
        (signature) => signature.length === expected.length && timingSafeEqual(signature, expected),
      )
    ) {
      return { verified: true, detail: `${preset} signature, secret ${index + 1} of ${secrets.length}` };
    }
  }
  return { verified: false, reason: 'no signature matches any live secret' };
}

/** The signatures (and Stripe's timestamp) a header holds; null when it is not in the layout. */
function signaturesIn(
  profile: Profile,
  values: string[],
): { signatures: string[]; timestamp?: string } | null {
  const { layout } = profile;
  if (layout.kind === 'single') {
    const signatures = values.map((value) => {
      const trimmed = value.trim();
      if (!layout.prefix) return trimmed;
      return trimmed.startsWith(layout.prefix) ? trimmed.slice(layout.prefix.length) : '';
    });
    return signatures.some((s) => s) ? { signatures: signatures.filter((s) => s) } : null;
  }
  if (layout.kind === 'versioned') {
    const signatures = values
      .flatMap((value) => value.split(' '))
      .filter((entry) => entry.startsWith('v1,'))
      .map((entry) => entry.slice(3));
    return signatures.length > 0 ? { signatures } : null;
  }
  const pairs = values.flatMap((value) => value.split(',')).map((pair) => pair.trim().split('='));
  const timestamp = pairs.find(([k]) => k === 't')?.[1];
  const signatures = pairs.filter(([k, v]) => k === 'v1' && v).map(([, v]) => v!);
  return timestamp && signatures.length > 0 ? { signatures, timestamp } : null;
}

function timestampProblem(profile: Profile, timestamp: string | undefined, receivedAt: Date): string | null {
  if (!timestamp)
    return `missing timestamp${profile.timestampHeader ? ` header ${profile.timestampHeader}` : ''}`;
  if (!/^\d{1,12}$/.test(timestamp)) return `malformed timestamp ${timestamp.slice(0, 40)}`;
  const tolerance = profile.toleranceSeconds ?? DEFAULT_TOLERANCE;
  const off = Math.round(Math.abs(receivedAt.getTime() / 1000 - Number(timestamp)));
  return off > tolerance ? `timestamp ${timestamp} is ${off} s from now (tolerance ${tolerance} s)` : null;
}

/** The signed bytes: the template's text as UTF-8 around the body's own bytes, never re-encoded. */
function signedContent(template: string, body: Buffer, timestamp: string, id: string): Buffer {
  const parts: Buffer[] = [];
  let at = 0;
  for (const match of template.matchAll(PLACEHOLDERS)) {
    parts.push(Buffer.from(template.slice(at, match.index), 'utf8'));
    parts.push(match[1] === 'body' ? body : Buffer.from(match[1] === 'timestamp' ? timestamp : id, 'utf8'));
    at = match.index + match[0].length;
  }
  parts.push(Buffer.from(template.slice(at), 'utf8'));
  return Buffer.concat(parts);
}

function keyOf(profile: Profile, secret: string): Buffer | null {
  if (profile.key === 'utf8') return Buffer.from(secret, 'utf8');
  return secret.startsWith('whsec_') ? Buffer.from(secret.slice(6), 'base64') : null;
}

/** Strict hex or base64 (with or without padding); null for anything else. */
function decode(value: string, encoding: 'hex' | 'base64'): Buffer | null {
  if (encoding === 'hex') return /^(?:[0-9a-fA-F]{2})+$/.test(value) ? Buffer.from(value, 'hex') : null;
  return /^[A-Za-z0-9+/]+={0,2}$/.test(value) ? Buffer.from(value, 'base64') : null;
}

function verifyCredential(
  verification: Verification,
  secrets: readonly string[],
  request: SignedRequest,
): VerificationResult {
  const basic = verification.preset === 'BASIC';
  const header = basic ? 'authorization' : verification.apiKeyHeader!;
  const value = first(request.headers[header]);
  if (!value) return { verified: false, reason: `missing header ${header}` };
  const scheme = basic ? /^Basic\s+(.+)$/i : header === 'authorization' ? /^Bearer\s+(.+)$/i : /^(.+)$/;
  const given = scheme.exec(value.trim())?.[1];
  if (!given) return { verified: false, reason: `malformed header ${header}` };
  const credential = basic ? Buffer.from(given, 'base64').toString('utf8') : given;
  // Digests of both, so neither the length nor the content leaks through timing.
  const digest = sha256(credential);
  for (const [index, secret] of secrets.entries()) {
    if (timingSafeEqual(digest, sha256(secret))) {
      return {
        verified: true,
        detail: `${verification.preset} credential, secret ${index + 1} of ${secrets.length}`,
      };
    }
  }
  return { verified: false, reason: basic ? 'the user or password is wrong' : 'the key is wrong' };
}

const sha256 = (value: string) => createHash('sha256').update(value, 'utf8').digest();

const all = (value: string | string[] | undefined): string[] =>
  value === undefined ? [] : Array.isArray(value) ? value : [value];
const first = (value: string | string[] | undefined): string | undefined => all(value)[0];

/** Headers whose values are credentials: redacted before a request is stored. */
export function credentialHeaders(verification: Verification): string[] {
  const always = ['authorization', 'cookie', 'proxy-authorization'];
  return verification.apiKeyHeader ? [...always, verification.apiKeyHeader] : always;
}

/** Where the provider puts its delivery id, for idempotency; null when its preset knows none. */
export function presetIdempotency(
  verification: Verification,
): { header: string } | { bodyPath: string } | null {
  switch (verification.preset) {
    case 'GITHUB':
      return { header: 'x-github-delivery' };
    case 'SHOPIFY':
      return { header: 'x-shopify-event-id' };
    case 'STRIPE':
      return { bodyPath: 'id' };
    case 'STANDARD_WEBHOOKS':
      return { header: 'webhook-id' };
    case 'SLACK':
      return { bodyPath: 'event_id' };
    case 'HMAC':
      return verification.hmac?.idHeader ? { header: verification.hmac.idHeader } : null;
    default:
      return null;
  }
}

/** Whether a stored request can be verified again: not with BASIC or API_KEY, whose credentials are redacted. */
export const canReverify = (verification: Verification): boolean =>
  verification.preset !== 'BASIC' && verification.preset !== 'API_KEY';
