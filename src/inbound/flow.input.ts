import { z } from 'zod';
import { storableText, text } from '../input.ts';
import { inboundFormats } from './body.ts';
import { flowStatuses } from './flow.entity.ts';
import { inboundSourceStatuses } from './inbound-source.entity.ts';
import { eventTypeSelector } from './inbound-source.input.ts';
import { hmacAlgorithms, headerName, signatureEncodings } from './verification.ts';

/** A flow's filter and mapping are JSON documents, checked by filterProblems and mappingProblems. */
const document = z.unknown();

export const createFlowInput = z.object({
  name: text(255),
  description: text(1000).nullish(),
  status: z.enum(flowStatuses).nullish(),
  eventType: eventTypeSelector,
  filter: document.nullish(),
  mapping: document.nullish(),
});
export type CreateFlowInput = z.input<typeof createFlowInput>;

/** JSON Merge Patch, as for sources: null clears description, filter or mapping. */
export const updateFlowInput = z.object({
  name: text(255).nullish(),
  description: text(1000).nullish(),
  status: z.enum(flowStatuses).nullish(),
  eventType: eventTypeSelector.nullish(),
  filter: document.nullish(),
  mapping: document.nullish(),
});
export type UpdateFlowInput = z.input<typeof updateFlowInput>;
export const FLOW_REQUIRED_ON_UPDATE = ['name', 'status', 'eventType'] as const;

/** One of `values`, given in any case as the reference writes them (`csv`, `sha256`), kept upper-case. */
const oneOf = <T extends string>(values: readonly T[]) =>
  z
    .string()
    .transform((value) => value.toUpperCase())
    .refine((value): value is T => (values as readonly string[]).includes(value), {
      message: `must be one of ${values.map((v) => v.toLowerCase()).join(', ')}`,
    });

/**
 * A flow webhook as the reference has it (`status`, `format`, `body`, `hmac_algorithm`,
 * `hmac_secret_key` of at most 128 characters), with the header and encoding the signature comes in.
 */
const webhookFields = {
  name: text(255).nullish(),
  status: z.enum(inboundSourceStatuses).nullish(),
  format: oneOf(inboundFormats).nullish(),
  body: storableText(64 * 1024).nullish(),
  hmacAlgorithm: oneOf(hmacAlgorithms).nullish(),
  hmacSecretKey: z.string().min(1).max(128).nullish(),
  hmacHeader: headerName.nullish(),
  hmacEncoding: z.enum(signatureEncodings).nullish(),
};

export const createFlowWebhookInput = z.object({ flowId: z.string(), ...webhookFields });
export type CreateFlowWebhookInput = z.input<typeof createFlowWebhookInput>;

export const updateFlowWebhookInput = z.object(webhookFields);
export type UpdateFlowWebhookInput = z.input<typeof updateFlowWebhookInput>;
export const FLOW_WEBHOOK_REQUIRED_ON_UPDATE = ['name', 'status', 'format'] as const;

/** The signature header a flow webhook reads when none is given. */
export const DEFAULT_FLOW_HMAC_HEADER = 'x-signature';

export const testFlowInput = z
  .object({
    flowId: z.string(),
    webhookId: z.string().nullish(),
    body: z.string().nullish(),
    bodyBase64: z.base64().nullish(),
    headers: z
      .record(z.string(), z.union([z.string().max(8192), z.array(z.string().max(8192)).max(20)]))
      .refine((headers) => Object.keys(headers).length <= 100, 'at most 100 headers')
      .nullish(),
    format: z.enum(inboundFormats).nullish(),
  })
  .superRefine((input, ctx) => {
    if ((input.body == null) === (input.bodyBase64 == null)) {
      ctx.addIssue({ code: 'custom', path: ['body'], message: 'give exactly one of body, bodyBase64' });
    }
  });
export type TestFlowInput = z.input<typeof testFlowInput>;
