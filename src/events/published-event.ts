import type { EventMessage } from '../bus/contracts.ts';
import type { Event } from './event.entity.ts';

/** An event as clients see it, whether read from the database or from the bus. */
export interface PublishedEvent {
  id: string;
  tenantId: string;
  type: string;
  meta: { module: string | null; model: string; action: string };
  current: unknown;
  previous: unknown;
  occurredAt: Date;
  idempotencyKey: string;
  /** The trace it was published in (events.traceparent): message headers carry it, not the body. */
  traceparent?: string | null;
}

export function fromEntity(event: Event): PublishedEvent {
  return {
    id: event.id,
    tenantId: event.tenantId,
    type: event.type,
    meta: { module: event.module ?? null, model: event.model, action: event.action },
    current: event.current ?? null,
    previous: event.previous ?? null,
    occurredAt: event.occurredAt,
    idempotencyKey: event.idempotencyKey,
    traceparent: event.traceparent ?? null,
  };
}

export function fromMessage(message: EventMessage): PublishedEvent {
  return { ...message, occurredAt: new Date(message.occurredAt) };
}

export function toMessage({ traceparent: _traceparent, ...event }: PublishedEvent): EventMessage {
  return { v: 1, ...event, occurredAt: event.occurredAt.toISOString() };
}
