import type { IncomingMessage } from 'node:http';
import type { AuditService } from '../audit/audit.service.ts';
import type { DeliveryService } from '../deliveries/delivery.service.ts';
import type { EventTypeService } from '../event-types/event-type.service.ts';
import type { EventService } from '../events/event.service.ts';
import type { AppService } from '../apps/app.service.ts';
import type { FlowService } from '../inbound/flow.service.ts';
import type { InboundRequestService } from '../inbound/inbound-request.service.ts';
import type { InboundSourceService } from '../inbound/inbound-source.service.ts';
import type { LiveService } from '../live/live.service.ts';
import type { Logger } from '../logger.ts';
import type { Actor } from '../tenancy/actor.ts';
import type { ApiTokenService } from '../tenancy/api-token.service.ts';
import type { TenantService } from '../tenancy/tenant.service.ts';
import type { WebhookService } from '../webhooks/webhook.service.ts';

/** The services resolvers call: GraphQL's view of Herald, handed in by the wiring (app.ts). */
export interface Services {
  audit: AuditService;
  tenants: TenantService;
  tokens: ApiTokenService;
  webhooks: WebhookService;
  deliveries: DeliveryService;
  eventTypes: EventTypeService;
  events: EventService;
  live: LiveService;
  inboundSources: InboundSourceService;
  inboundRequests: InboundRequestService;
  flows: FlowService;
  apps: AppService;
}

export interface Context {
  /** Always set: unauthenticated requests are refused before execution (endpoint.ts). */
  actor: Actor;
  services: Services;
  requestId: string;
  /** Where Herald is reached from outside (HERALD_PUBLIC_URL, else the request's host): sources' URLs start with it. */
  baseUrl: string;
  logger: Logger;
}

/**
 * Who a bearer credential (`Bearer …`, from a header or a socket's connectionParams) stands for,
 * for a request whose `x-request-id` the HTTP edge has set; null refuses it.
 */
export type Authenticate = (authorization: unknown, req: IncomingMessage) => Promise<Actor | null>;
