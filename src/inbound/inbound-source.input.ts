import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { eventTypeName } from '../event-types/event-type.service.ts';
import { storableText, text } from '../input.ts';
import { bodyPath, inboundFormats } from './body.ts';
import {
  inboundSourceStatuses,
  type EventTypeSelector,
  type IdempotencySelector,
} from './inbound-source.entity.ts';
import { headerName, verificationPresets } from './verification.ts';

export const inboundMethods = ['POST', 'PUT', 'PATCH'] as const;

const cidr = z.string().refine((value) => {
  try {
    ipaddr.parseCIDR(value);
    return true;
  } catch {
    return false;
  }
}, 'must be a CIDR such as 203.0.113.0/24');

/** Exactly one of the given keys set (GraphQL has no input unions). */
const exactlyOne = (keys: string[]) => (value: Record<string, unknown>, ctx: z.RefinementCtx) => {
  const set = keys.filter((key) => value[key] != null);
  if (set.length !== 1) ctx.addIssue({ code: 'custom', message: `give exactly one of ${keys.join(', ')}` });
};

export const eventTypeSelector = z
  .object({ fixed: eventTypeName.nullish(), bodyPath: bodyPath.nullish(), header: headerName.nullish() })
  .superRefine(exactlyOne(['fixed', 'bodyPath', 'header']))
  .transform((value): EventTypeSelector =>
    value.fixed
      ? { fixed: value.fixed }
      : value.bodyPath
        ? { bodyPath: value.bodyPath }
        : { header: value.header! },
  );

export const idempotencySelector = z
  .object({ header: headerName.nullish(), bodyPath: bodyPath.nullish(), none: z.literal(true).nullish() })
  .superRefine(exactlyOne(['header', 'bodyPath', 'none']))
  .transform((value): IdempotencySelector =>
    value.header ? { header: value.header } : value.bodyPath ? { bodyPath: value.bodyPath } : { none: true },
  );

/** The verification as given: the profile is checked by verificationInput, the secret by secretProblem. */
export const verificationField = z.object({
  preset: z.enum(verificationPresets).nullish(),
  secret: z.string().max(1024).nullish(),
  hmac: z.record(z.string(), z.unknown()).nullish(),
  apiKeyHeader: z.string().nullish(),
});

const fields = {
  name: text(255),
  description: text(1000).nullish(),
  status: z.enum(inboundSourceStatuses),
  format: z.enum(inboundFormats),
  sampleBody: storableText(64 * 1024).nullish(),
  eventType: eventTypeSelector,
  idempotency: idempotencySelector.nullish(),
  maxBytes: z.number().int().min(1),
  allowedMethods: z
    .array(z.enum(inboundMethods))
    .min(1, 'allow at least one method')
    .transform((methods) => [...new Set(methods)]),
  allowedCidrs: z.array(cidr).max(100),
  requestsPerSecond: z.number().int().min(1).max(100_000).nullish(),
};

export const inboundTemplates = [
  'FLOWTLY_STRIPE',
  'FLOWTLY_E_INVOICE_INCOMING_COST',
  'FLOWTLY_E_INVOICE_STATUS',
] as const;
export type InboundTemplate = (typeof inboundTemplates)[number];

export const createInboundSourceInput = z.object({
  template: z.enum(inboundTemplates).nullish(),
  name: fields.name.nullish(),
  description: fields.description,
  status: fields.status.nullish(),
  format: fields.format.nullish(),
  sampleBody: fields.sampleBody,
  verification: verificationField.nullish(),
  eventType: fields.eventType.nullish(),
  idempotency: fields.idempotency,
  maxBytes: fields.maxBytes.nullish(),
  allowedMethods: fields.allowedMethods.nullish(),
  allowedCidrs: fields.allowedCidrs.nullish(),
  requestsPerSecond: fields.requestsPerSecond,
});
export type CreateInboundSourceInput = z.input<typeof createInboundSourceInput>;

/** JSON Merge Patch: an omitted field stays, null clears a nullable one, null on a required one is refused. */
export const updateInboundSourceInput = z.object({
  name: fields.name.nullish(),
  description: fields.description,
  status: fields.status.nullish(),
  format: fields.format.nullish(),
  sampleBody: fields.sampleBody,
  verification: verificationField.nullish(),
  /** How long the secrets a new one replaces keep verifying; the configured grace by default. */
  secretGraceSeconds: z
    .number()
    .int()
    .min(0)
    .max(7 * 24 * 3600)
    .nullish(),
  eventType: fields.eventType.nullish(),
  idempotency: fields.idempotency,
  maxBytes: fields.maxBytes.nullish(),
  allowedMethods: fields.allowedMethods.nullish(),
  allowedCidrs: fields.allowedCidrs.nullish(),
  requestsPerSecond: fields.requestsPerSecond,
});
export type UpdateInboundSourceInput = z.input<typeof updateInboundSourceInput>;
export const REQUIRED_ON_UPDATE = [
  'name',
  'status',
  'format',
  'verification',
  'eventType',
  'maxBytes',
  'allowedMethods',
  'allowedCidrs',
] as const;

/**
 * Flowtly's three receivers (`POST /webhooks/stripe`, `/webhooks/e_invoice/incoming_cost`,
 * `/webhooks/e_invoice/status`) as sources made in one mutation; what the input gives wins.
 */
export const templates: Record<
  InboundTemplate,
  {
    name: string;
    format: (typeof inboundFormats)[number];
    verification: { preset: (typeof verificationPresets)[number]; hmac?: Record<string, unknown> };
    eventType: EventTypeSelector;
  }
> = {
  FLOWTLY_STRIPE: {
    name: 'Stripe',
    format: 'JSON',
    verification: { preset: 'STRIPE' },
    // Stripe's own type (invoice.paid, customer.subscription.updated) names the event.
    eventType: { bodyPath: 'type' },
  },
  FLOWTLY_E_INVOICE_INCOMING_COST: {
    name: 'E-invoice: incoming cost invoices',
    format: 'XML',
    verification: {
      preset: 'HMAC',
      hmac: { algorithm: 'SHA256', encoding: 'HEX', header: 'x-signature', signedContent: '{body}' },
    },
    eventType: { fixed: 'e_invoice.incoming_cost.received' },
  },
  FLOWTLY_E_INVOICE_STATUS: {
    name: 'E-invoice: status changes',
    format: 'JSON',
    verification: { preset: 'BASIC' },
    eventType: { fixed: 'e_invoice.status.changed' },
  },
};
