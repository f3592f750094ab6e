import { z } from 'zod';
import type { StreamSpec } from './bus.ts';

/**
 * Every message on the bus: its subject layout and its versioned body. Subjects carry the tenant id
 * as a token, so tenant isolation is a subject filter, never a check after the fact.
 */

export const eventMessageV1 = z.object({
  v: z.literal(1),
  id: z.uuid(),
  /** Lower case, as the database spells it: the dispatcher matches stored rows by it. */
  tenantId: z.uuid().transform((id) => id.toLowerCase()),
  type: z.string().min(1),
  meta: z.object({ module: z.string().nullable(), model: z.string(), action: z.string() }),
  current: z.unknown(),
  previous: z.unknown(),
  occurredAt: z.iso.datetime({ offset: true }),
  /** Also the JetStream msgID: a publish with a key already seen is dropped by the stream. */
  idempotencyKey: z.string().min(1),
});
export type EventMessage = z.infer<typeof eventMessageV1>;

const party = z.object({ type: z.string(), id: z.string().nullable(), name: z.string().nullable() });

export const auditMessageV1 = z.object({
  v: z.literal(1),
  id: z.uuid(),
  tenantId: z.string().min(1),
  sequence: z.number().int().positive(),
  action: z.string(),
  executor: party,
  related: party.nullable(),
  relationName: z.string().nullable(),
  relationId: z.string().nullable(),
  metadata: z.record(z.string(), z.unknown()),
  ip: z.string().nullable(),
  userAgent: z.string().nullable(),
  requestId: z.string().nullable(),
  createdAt: z.iso.datetime({ offset: true }),
  previousHash: z.string(),
  hash: z.string(),
});

/** One attempt of one delivery, queued for the workers. */
export const deliveryMessageV1 = z.object({
  v: z.literal(1),
  deliveryId: z.uuid(),
  tenantId: z.string().min(1),
  webhookId: z.uuid(),
  /** The attempt this message is for: a message for an attempt already made is a repeat. */
  attempt: z.number().int().positive(),
});
export type DeliveryMessage = z.infer<typeof deliveryMessageV1>;

/** One attempt of one delivery, as recorded: what live consoles receive. */
export const attemptMessageV1 = z.object({
  v: z.literal(1),
  id: z.uuid(),
  tenantId: z.string().min(1),
  deliveryId: z.uuid(),
  webhookId: z.uuid(),
  attempt: z.number().int().positive(),
  /** The delivery's status once this attempt was judged. */
  status: z.enum(['SUCCEEDED', 'FAILED', 'RETRYING']),
  url: z.string(),
  statusCode: z.number().int().nullable(),
  responseTimeMs: z.number().int().nonnegative(),
  response: z.string().nullable(),
  errorClass: z.string().nullable(),
  error: z.string().nullable(),
  createdAt: z.iso.datetime({ offset: true }),
});
export type AttemptMessage = z.infer<typeof attemptMessageV1>;

/** One request to an inbound source, as stored (without its body): what live tails receive. */
export const inboundRequestMessageV1 = z.object({
  v: z.literal(1),
  id: z.uuid(),
  tenantId: z.string().min(1),
  sourceId: z.uuid(),
  method: z.string(),
  path: z.string(),
  query: z.string().nullable(),
  headers: z.record(z.string(), z.union([z.string(), z.array(z.string())])),
  contentType: z.string().nullable(),
  clientIp: z.string().nullable(),
  bodyBytes: z.number().int().nonnegative(),
  bodySha256: z.string().nullable(),
  outcome: z.string(),
  statusCode: z.number().int(),
  reason: z.string().nullable(),
  verification: z.string(),
  verificationDetail: z.string().nullable(),
  parseStatus: z.string(),
  parseError: z.string().nullable(),
  idempotencyKey: z.string().nullable(),
  duplicateOf: z.uuid().nullable(),
  replayOf: z.uuid().nullable(),
  eventId: z.uuid().nullable(),
  createdAt: z.iso.datetime({ offset: true }),
});
export type InboundRequestMessage = z.infer<typeof inboundRequestMessageV1>;

/**
 * A tenant's newest audit checkpoint, kept on the bus as well as in the database: a database
 * owner who deletes the newest checkpoints cannot delete this one (AuditCheckpoints).
 */
export const checkpointMessageV1 = z.object({
  v: z.literal(1),
  tenantId: z.string().min(1),
  sequence: z.number().int().positive(),
  hash: z.string(),
  previousMac: z.string(),
  mac: z.string(),
  createdAt: z.iso.datetime({ offset: true }),
});
export type CheckpointMessage = z.infer<typeof checkpointMessageV1>;

/** A tenant's webhooks changed: every process drops what it cached of them. */
export const webhooksChangedV1 = z.object({ v: z.literal(1), tenantId: z.string().min(1) });

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encode<T>(schema: z.ZodType<T>, message: T): Uint8Array {
  return encoder.encode(JSON.stringify(schema.parse(message)));
}

/** Throws a ZodError for a body that breaks the contract; consumers terminate such messages. */
export function decode<T>(schema: z.ZodType<T>, data: Uint8Array): T {
  return schema.parse(JSON.parse(decoder.decode(data)));
}

export function subjects(prefix: string) {
  return {
    /** `<prefix>.events.<tenant>.<type>`; the type's dots make module, model and action tokens. */
    event: (tenantId: string, type: string) => `${prefix}.events.${tenantId}.${type}`,
    eventsOfTenant: (tenantId: string) => `${prefix}.events.${tenantId}.>`,
    allEvents: `${prefix}.events.>`,
    /** `<prefix>.deliveries.<tenant>.<webhook>`: the work queue of delivery attempts. */
    delivery: (tenantId: string, webhookId: string) => `${prefix}.deliveries.${tenantId}.${webhookId}`,
    allDeliveries: `${prefix}.deliveries.>`,
    /** `<prefix>.attempt.<tenant>.<webhook>`: attempts as they are recorded, for live consoles. */
    attempt: (tenantId: string, webhookId: string) => `${prefix}.attempt.${tenantId}.${webhookId}`,
    attemptsOfTenant: (tenantId: string) => `${prefix}.attempt.${tenantId}.*`,
    allAttempts: `${prefix}.attempt.>`,
    /** `<prefix>.audit.<tenant>`: a tenant's audit entries in sequence order. */
    audit: (tenantId: string) => `${prefix}.audit.${tenantId}`,
    allAudit: `${prefix}.audit.>`,
    /** `<prefix>.checkpoint.<tenant>`: the tenant's newest audit checkpoint. */
    checkpoint: (tenantId: string) => `${prefix}.checkpoint.${tenantId}`,
    allCheckpoints: `${prefix}.checkpoint.>`,
    /** `<prefix>.inbound.<tenant>.<source>`: inbound requests as they are stored, for live tails. */
    inbound: (tenantId: string, sourceId: string) => `${prefix}.inbound.${tenantId}.${sourceId}`,
    inboundOfTenant: (tenantId: string) => `${prefix}.inbound.${tenantId}.*`,
    allInbound: `${prefix}.inbound.>`,
    /** `<prefix>.control.webhooks.<tenant>`: cache invalidations between processes. */
    webhooksChanged: (tenantId: string) => `${prefix}.control.webhooks.${tenantId}`,
    allControl: `${prefix}.control.>`,
  };
}

export function streams(prefix: string): {
  events: StreamSpec;
  deliveries: StreamSpec;
  attempts: StreamSpec;
  audit: StreamSpec;
  checkpoints: StreamSpec;
  inbound: StreamSpec;
  control: StreamSpec;
} {
  const upper = prefix.toUpperCase();
  return {
    events: {
      name: `${upper}_EVENTS`,
      subjects: [subjects(prefix).allEvents],
      retention: 'limits',
      maxAgeMs: 7 * 24 * 3600_000,
    },
    deliveries: {
      name: `${upper}_DELIVERIES`,
      subjects: [subjects(prefix).allDeliveries],
      retention: 'workqueue',
      maxAgeMs: 7 * 24 * 3600_000,
    },
    attempts: {
      name: `${upper}_ATTEMPTS`,
      subjects: [subjects(prefix).allAttempts],
      retention: 'limits',
      maxAgeMs: 24 * 3600_000,
      // The busiest stream: an announcement is repeated only while its outbox entry outlives the
      // publish, seconds, so its ids need not be kept as long as the others'.
      duplicateWindowMs: 120_000,
    },
    audit: {
      name: `${upper}_AUDIT`,
      subjects: [subjects(prefix).allAudit],
      retention: 'limits',
      maxAgeMs: 7 * 24 * 3600_000,
    },
    checkpoints: {
      name: `${upper}_CHECKPOINTS`,
      subjects: [subjects(prefix).allCheckpoints],
      retention: 'limits',
      // Only the newest of each tenant, for as long as the audit trail lives.
      maxAgeMs: 100 * 365 * 24 * 3600_000,
      maxPerSubject: 1,
    },
    inbound: {
      name: `${upper}_INBOUND`,
      subjects: [subjects(prefix).allInbound],
      retention: 'limits',
      maxAgeMs: 24 * 3600_000,
      duplicateWindowMs: 120_000,
    },
    control: {
      name: `${upper}_CONTROL`,
      subjects: [subjects(prefix).allControl],
      retention: 'limits',
      maxAgeMs: 3_600_000,
    },
  };
}
