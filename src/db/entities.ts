import { EventTypeEntity } from '../domain/event-types/event-type.entity.ts';
import { EventEntity, EventOutboxEntity } from '../domain/events/event.entity.ts';
import { AuditChainHeadEntity, AuditLogEntity, AuditOutboxEntity } from '../domain/audit/audit-log.entity.ts';
import { ApiTokenEntity } from '../domain/tenancy/api-token.entity.ts';
import { TenantEntity } from '../domain/tenancy/tenant.entity.ts';
import { WebhookEntity } from '../domain/webhooks/webhook.entity.ts';
import { DeliveryAttemptEntity, DeliveryEntity } from '../domain/deliveries/delivery.entity.ts';

/** Every entity Herald persists; the ORM and the migration generator both read this list. */
export const entities = [
  TenantEntity,
  ApiTokenEntity,
  AuditLogEntity,
  AuditChainHeadEntity,
  AuditOutboxEntity,
  EventTypeEntity,
  EventEntity,
  EventOutboxEntity,
  WebhookEntity,
  DeliveryEntity,
  DeliveryAttemptEntity,
];
