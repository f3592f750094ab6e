import { z } from 'zod';
import { InvalidInputError, NotFoundError } from '../../errors.ts';
import { inboundFormats } from '../../inbound/body.ts';
import {
  inboundSourceStatuses,
  type EventTypeSelector,
  type InboundSource,
} from '../../inbound/inbound-source.entity.ts';
import { inboundMethods, inboundTemplates } from '../../inbound/inbound-source.input.ts';
import { hmacAlgorithms, signatureEncodings, verificationPresets } from '../../inbound/verification.ts';
import { text } from '../../input.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';

const reads = { can: 'inbound.read' } as const;
const manages = { can: 'inbound.manage' } as const;

export const InboundSourceStatusRef = builder.enumType('InboundSourceStatus', {
  description:
    'DEPLOYED: requests are verified, kept and routed into events; DRAFT: kept but not routed (build against real traffic); INACTIVE: refused with 404.',
  values: inboundSourceStatuses,
});
export const InboundFormatRef = builder.enumType('InboundFormat', { values: inboundFormats });
const VerificationPresetRef = builder.enumType('VerificationPreset', { values: verificationPresets });
export const HmacAlgorithmRef = builder.enumType('HmacAlgorithm', { values: hmacAlgorithms });
export const SignatureEncodingRef = builder.enumType('SignatureEncoding', { values: signatureEncodings });
const InboundMethodRef = builder.enumType('InboundMethod', { values: inboundMethods });
const InboundSourceTemplateRef = builder.enumType('InboundSourceTemplate', {
  description:
    "Ready-made sources: Flowtly's receivers of Stripe events, e-invoice incoming cost invoices (XML, HMAC) and e-invoice status changes (BASIC).",
  values: inboundTemplates,
});

type Verification = InboundSource['verification'];
const HmacRef = builder.objectRef<NonNullable<Verification['hmac']>>('InboundHmac').implement({
  fields: (t) => ({
    algorithm: t.field({ type: HmacAlgorithmRef, resolve: (h) => h.algorithm }),
    encoding: t.field({ type: SignatureEncodingRef, resolve: (h) => h.encoding }),
    header: t.exposeString('header'),
    prefix: t.exposeString('prefix', { nullable: true }),
    signedContent: t.exposeString('signedContent', {
      description: 'What is signed, over {body}, {timestamp} and {id}.',
    }),
    timestampHeader: t.exposeString('timestampHeader', { nullable: true }),
    idHeader: t.exposeString('idHeader', { nullable: true }),
    toleranceSeconds: t.exposeInt('toleranceSeconds', { nullable: true }),
  }),
});

const VerificationRef = builder
  .objectRef<{ verification: Verification; liveSecrets: number }>('InboundVerification')
  .implement({
    description: 'How requests are verified. Secrets are write-only.',
    fields: (t) => ({
      preset: t.field({ type: VerificationPresetRef, resolve: (v) => v.verification.preset }),
      hmac: t.field({ type: HmacRef, nullable: true, resolve: (v) => v.verification.hmac }),
      apiKeyHeader: t.string({ nullable: true, resolve: (v) => v.verification.apiKeyHeader }),
      liveSecrets: t.exposeInt('liveSecrets', {
        description:
          'Secrets that verify now: the current one, and those in their grace period after a rotation.',
      }),
    }),
  });

export const EventTypeSelectorRef = builder
  .objectRef<EventTypeSelector>('InboundEventTypeSelector')
  .implement({
    description: 'Where the event type comes from: one fixed type, or read from a body path or a header.',
    fields: (t) => ({
      fixed: t.string({ nullable: true, resolve: (s) => ('fixed' in s ? s.fixed : null) }),
      bodyPath: t.string({ nullable: true, resolve: (s) => ('bodyPath' in s ? s.bodyPath : null) }),
      header: t.string({ nullable: true, resolve: (s) => ('header' in s ? s.header : null) }),
    }),
  });

const IdempotencySelectorRef = builder
  .objectRef<NonNullable<InboundSource['idempotency']>>('InboundIdempotencySelector')
  .implement({
    description:
      "Where the sender's delivery id comes from; a second request with the same id is a DUPLICATE.",
    fields: (t) => ({
      header: t.string({ nullable: true, resolve: (s) => ('header' in s ? s.header : null) }),
      bodyPath: t.string({ nullable: true, resolve: (s) => ('bodyPath' in s ? s.bodyPath : null) }),
      none: t.boolean({ resolve: (s) => 'none' in s }),
    }),
  });

export const InboundSourceRef = builder.objectRef<InboundSource>('InboundSource');
builder.node(InboundSourceRef, {
  description:
    "A receiver of a third party's webhooks: verified, kept exactly as received, routed into events.",
  id: { resolve: (source) => source.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'urlTokenHash' in value,
  loadMany: loadPermitted('InboundSource', 'inbound.read', (ids, ctx) =>
    ctx.services.inboundSources.getMany(ctx.actor, ids),
  ),
  fields: (t) => ({
    name: t.exposeString('name'),
    description: t.exposeString('description', { nullable: true }),
    status: t.field({ type: InboundSourceStatusRef, resolve: (s) => s.status }),
    format: t.field({ type: InboundFormatRef, resolve: (s) => s.format }),
    sampleBody: t.exposeString('sampleBody', { nullable: true }),
    url: t.string({
      description: 'The URL to give the sender: anyone holding it can post, so treat it as a secret.',
      authScopes: manages,
      resolve: (source, _args, ctx) => `${ctx.baseUrl}${ctx.services.inboundSources.urlPath(source)}`,
    }),
    previousUrlExpiresAt: t.field({
      type: 'DateTime',
      nullable: true,
      description: 'Until when the URL before the last rotation still works.',
      resolve: (s) =>
        s.previousUrlTokenExpiresAt && s.previousUrlTokenExpiresAt > new Date()
          ? s.previousUrlTokenExpiresAt
          : null,
    }),
    verification: t.loadable({
      type: VerificationRef,
      // A page of sources counts their live secrets in one statement.
      resolve: (source) => source.id,
      load: (ids: string[], ctx) => ctx.services.inboundSources.verifications(ctx.actor, ids),
    }),
    eventType: t.field({
      type: EventTypeSelectorRef,
      nullable: true,
      description: "Null for a flow's webhook: its flow's route decides.",
      resolve: (s) => s.eventType ?? null,
    }),
    idempotency: t.field({
      type: IdempotencySelectorRef,
      nullable: true,
      description: "Null: the preset's own (X-GitHub-Delivery, X-Shopify-Event-Id, Stripe's id, webhook-id).",
      resolve: (s) => s.idempotency ?? null,
    }),
    maxBytes: t.exposeInt('maxBytes'),
    allowedMethods: t.field({ type: [InboundMethodRef], resolve: (s) => s.allowedMethods as never }),
    allowedCidrs: t.exposeStringList('allowedCidrs', { description: 'Empty: any sender address.' }),
    requestsPerSecond: t.exposeInt('requestsPerSecond', {
      nullable: true,
      description: 'Null: the configured default (HERALD_INBOUND_REQUESTS_PER_SECOND).',
    }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    updatedAt: t.expose('updatedAt', { type: 'DateTime' }),
  }),
});

const InboundSourceConnection = builder.connectionObject({
  type: InboundSourceRef,
  name: 'InboundSourceConnection',
});

const InboundSourceFilter = builder.inputType('InboundSourceFilter', {
  fields: (t) => ({
    status: t.field({ type: InboundSourceStatusRef }),
    format: t.field({ type: InboundFormatRef }),
    search: t.string({ description: 'Case-insensitive text in the name.', validate: text(255) }),
  }),
});

builder.queryFields((t) => ({
  inboundSources: t.field({
    type: InboundSourceConnection,
    description: "The tenant's inbound sources, newest first.",
    authScopes: reads,
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: InboundSourceFilter }),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.inboundSources.list(ctx.actor, args.filter ?? {}, pageRequest(args))),
  }),
  inboundSource: t.field({
    type: InboundSourceRef,
    nullable: true,
    authScopes: reads,
    args: { id: t.arg.globalID({ required: true, for: InboundSourceRef }) },
    resolve: (_root, { id }, ctx) => ctx.services.inboundSources.find(ctx.actor, id.id),
  }),
}));

const HmacInput = builder.inputType('InboundHmacInput', {
  description: "A custom HMAC profile (Patchworks' hmac_algorithm and hmac_secret_key, or any sender's).",
  fields: (t) => ({
    algorithm: t.field({ type: HmacAlgorithmRef, description: 'SHA256 by default.' }),
    encoding: t.field({ type: SignatureEncodingRef, description: 'HEX by default.' }),
    header: t.string({ required: true, description: 'The header holding the signature.' }),
    prefix: t.string({ description: 'Stripped before decoding, e.g. sha256=.' }),
    signedContent: t.string({
      description: 'What is signed: {body} by default; e.g. {timestamp}.{body} or v0:{timestamp}:{body}.',
    }),
    timestampHeader: t.string(),
    idHeader: t.string(),
    toleranceSeconds: t.int({ description: 'How far the timestamp may be from now; 300 by default.' }),
  }),
});

const VerificationInput = builder.inputType('InboundVerificationInput', {
  fields: (t) => ({
    preset: t.field({ type: VerificationPresetRef, description: "The template's by default." }),
    secret: t.string({
      description:
        'The signing secret (STRIPE, STANDARD_WEBHOOKS: whsec_…; HMAC: at most 128 characters), user:password for BASIC, the key for API_KEY. Write-only. On update, a new secret becomes the current one and the old ones keep verifying for secretGraceSeconds.',
    }),
    hmac: t.field({ type: HmacInput }),
    apiKeyHeader: t.string({
      description: 'API_KEY only: x-api-key by default; authorization means Bearer.',
    }),
  }),
});

export const EventTypeSelectorInput = builder.inputType('InboundEventTypeInput', {
  description: 'Exactly one of fixed, bodyPath, header.',
  fields: (t) => ({
    fixed: t.string({ description: 'An event type of the catalog.' }),
    bodyPath: t.string({ description: 'A path into the parsed body, e.g. type or data.kind.' }),
    header: t.string(),
  }),
});

const IdempotencySelectorInput = builder.inputType('InboundIdempotencyInput', {
  description: 'Exactly one of header, bodyPath, none.',
  fields: (t) => ({ header: t.string(), bodyPath: t.string(), none: t.boolean() }),
});

type Types = typeof builder extends PothosSchemaTypes.SchemaBuilder<infer T> ? T : never;

/** The fields creating and updating share. */
const sourceFields = (t: PothosSchemaTypes.InputFieldBuilder<Types, 'InputObject'>) => ({
  name: t.string(),
  description: t.string(),
  status: t.field({ type: InboundSourceStatusRef }),
  format: t.field({ type: InboundFormatRef }),
  sampleBody: t.string({ description: 'An example body, at most 64 KiB, for building against.' }),
  verification: t.field({ type: VerificationInput }),
  eventType: t.field({ type: EventTypeSelectorInput }),
  idempotency: t.field({ type: IdempotencySelectorInput }),
  maxBytes: t.int({
    description: 'The largest body accepted; HERALD_INBOUND_MAX_BYTES by default and at most.',
  }),
  allowedMethods: t.field({ type: [InboundMethodRef], description: 'POST by default.' }),
  allowedCidrs: t.stringList({ description: 'Sender networks, e.g. 203.0.113.0/24; none: any.' }),
  requestsPerSecond: t.int(),
});

const CreateInboundSourceInput = builder.inputType('CreateInboundSourceInput', {
  description:
    'name, verification and eventType are required unless a template gives them; status is DRAFT by default, format JSON.',
  fields: (t) => ({ template: t.field({ type: InboundSourceTemplateRef }), ...sourceFields(t) }),
});

const UpdateInboundSourceInput = builder.inputType('UpdateInboundSourceInput', {
  description: 'JSON Merge Patch: omit a field to keep it, null clears a nullable field.',
  fields: (t) => ({
    id: t.globalID({ required: true, for: InboundSourceRef }),
    ...sourceFields(t),
    secretGraceSeconds: t.int({
      description:
        'How long the replaced secrets keep verifying after a new one; 24 hours by default, at most 7 days.',
    }),
  }),
});

const DeleteInboundSourceInput = builder.inputType('DeleteInboundSourceInput', {
  fields: (t) => ({ id: t.globalID({ required: true, for: InboundSourceRef }) }),
});

const RotateInboundSourceUrlInput = builder.inputType('RotateInboundSourceUrlInput', {
  fields: (t) => ({
    id: t.globalID({ required: true, for: InboundSourceRef }),
    graceSeconds: t.int({
      description: 'How long the old URL keeps working; 24 hours by default, at most 7 days.',
      validate: z
        .number()
        .int()
        .min(0)
        .max(7 * 24 * 3600)
        .nullish(),
    }),
  }),
});

const InboundSourcePayload = builder.objectRef<{ source: InboundSource }>('InboundSourcePayload').implement({
  fields: (t) => ({ source: t.field({ type: InboundSourceRef, resolve: (p) => p.source }) }),
});

/** GraphQL gives nulls for fields sent as null: dropped from nested objects, where they mean "not given". */
export const withoutNulls = <T extends object>(value: T | null | undefined) =>
  value == null ? value : Object.fromEntries(Object.entries(value).filter(([, v]) => v != null));

const nested = <T extends { verification?: unknown; eventType?: unknown; idempotency?: unknown }>(
  input: T,
) => ({
  ...input,
  verification: input.verification && {
    ...withoutNulls(input.verification),
    // Kept with its nulls: in an update, a null setting goes back to its default.
    hmac: (input.verification as { hmac?: object | null }).hmac,
  },
  eventType: withoutNulls(input.eventType as object | null | undefined),
  idempotency: input.idempotency === null ? null : withoutNulls(input.idempotency),
});

const changeErrors = [InvalidInputError, NotFoundError];

builder.mutationFields((t) => ({
  createInboundSource: t.field({
    type: InboundSourcePayload,
    authScopes: manages,
    args: { input: t.arg({ type: CreateInboundSourceInput, required: true }) },
    errors: { types: [InvalidInputError], directResult: true, union: { name: 'CreateInboundSourceResult' } },
    resolve: async (_root, { input }, ctx) => ({
      source: await ctx.services.inboundSources.create(ctx.actor, nested(input) as never),
    }),
  }),
  updateInboundSource: t.field({
    type: InboundSourcePayload,
    authScopes: manages,
    args: { input: t.arg({ type: UpdateInboundSourceInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'UpdateInboundSourceResult' } },
    resolve: async (_root, { input: { id, ...patch } }, ctx) => ({
      source: await ctx.services.inboundSources.update(ctx.actor, id.id, nested(patch) as never),
    }),
  }),
  deleteInboundSource: t.field({
    type: InboundSourcePayload,
    description: 'Deletes the source (its URL answers 404 at once); its request log stays until retention.',
    authScopes: manages,
    args: { input: t.arg({ type: DeleteInboundSourceInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'DeleteInboundSourceResult' } },
    resolve: async (_root, { input }, ctx) => ({
      source: await ctx.services.inboundSources.delete(ctx.actor, input.id.id),
    }),
  }),
  rotateInboundSourceUrl: t.field({
    type: InboundSourcePayload,
    description:
      'A new URL; the old one keeps working for the grace period (only the one just replaced: rotating again ends the grace of the one before).',
    authScopes: manages,
    args: { input: t.arg({ type: RotateInboundSourceUrlInput, required: true }) },
    errors: { types: changeErrors, directResult: true, union: { name: 'RotateInboundSourceUrlResult' } },
    resolve: async (_root, { input }, ctx) => ({
      source: await ctx.services.inboundSources.rotateUrl(
        ctx.actor,
        input.id.id,
        input.graceSeconds == null ? undefined : input.graceSeconds * 1000,
      ),
    }),
  }),
}));
