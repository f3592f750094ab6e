import { EventTypeEntity } from '../event-types/event-type.entity.ts';
import { EventEntity, EventOutboxEntity } from '../events/event.entity.ts';
import { AuditChainHeadEntity, AuditLogEntity, AuditOutboxEntity } from '../audit/audit-log.entity.ts';
import { AuditCheckpointEntity } from '../audit/audit-checkpoint.entity.ts';
import { ApiTokenEntity } from '../tenancy/api-token.entity.ts';
import { TenantEntity } from '../tenancy/tenant.entity.ts';
import { WebhookEntity } from '../webhooks/webhook.entity.ts';
import { AttemptOutboxEntity, DeliveryAttemptEntity, DeliveryEntity } from '../deliveries/delivery.entity.ts';
import { AppEntity, AppInstallationEntity, AppVersionEntity } from '../apps/app.entity.ts';
import { FlowEntity } from '../inbound/flow.entity.ts';
import { InboundSourceEntity } from '../inbound/inbound-source.entity.ts';
import { InboundOutboxEntity, InboundRequestEntity } from '../inbound/inbound-request.entity.ts';

/** Every entity Herald persists; the ORM and the migration generator both read this list. */
export const entities = [
  TenantEntity,
  ApiTokenEntity,
  AuditLogEntity,
  AuditChainHeadEntity,
  AuditOutboxEntity,
  AuditCheckpointEntity,
  EventTypeEntity,
  EventEntity,
  EventOutboxEntity,
  WebhookEntity,
  DeliveryEntity,
  DeliveryAttemptEntity,
  AttemptOutboxEntity,
  InboundSourceEntity,
  FlowEntity,
  AppEntity,
  AppVersionEntity,
  AppInstallationEntity,
  InboundRequestEntity,
  InboundOutboxEntity,
];
