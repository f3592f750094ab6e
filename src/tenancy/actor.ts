import type { Scope } from '../permissions.ts';

/** What kind of client a token belongs to; webhooks remember it as `managedBy`. */
export const apiClients = ['DASHBOARD', 'API', 'ZAPIER', 'MAKE', 'APP'] as const;
export type ApiClient = (typeof apiClients)[number];

/** Where a call came from, for the audit log. */
export interface RequestInfo {
  ip: string | null;
  userAgent: string | null;
  requestId: string | null;
}

/**
 * Who is calling: every service method takes it first, and every tenant query is scoped by its
 * tenant. The operator (config token, CLI) acts on the platform chain: it manages tenants and the
 * catalog, and holds no tenant scopes.
 */
export interface Actor {
  kind: 'operator' | 'token' | 'system';
  tenantId: string;
  /** The operator: manages tenants and the event-type catalog. */
  admin: boolean;
  tokenId: string | null;
  name: string;
  client: ApiClient;
  scopes: ReadonlySet<Scope>;
  /** When the token stops working; null when it does not expire. */
  expiresAt: Date | null;
  /** The tenant plan's GraphQL requests a second per token; null: the configured default. */
  requestsPerSecond: number | null;
  /** An app's token: the data scopes that limit which events and fields it sees; null: all. */
  dataScopes: ReadonlySet<string> | null;
  /** An app's token: the installation it acts for. */
  appInstallationId: string | null;
  request: RequestInfo;
}

/** The tenant id of the platform's own audit chain: operator actions that belong to no tenant. */
export const PLATFORM_TENANT_ID = '00000000-0000-0000-0000-000000000000';

export const noRequest: RequestInfo = { ip: null, userAgent: null, requestId: null };

/** Herald itself, acting on a tenant's data (auto-disabling a failing webhook). */
export function systemActor(tenantId: string): Actor {
  return {
    kind: 'system',
    tenantId,
    admin: false,
    tokenId: null,
    name: 'herald',
    client: 'DASHBOARD',
    scopes: new Set(),
    expiresAt: null,
    requestsPerSecond: null,
    dataScopes: null,
    appInstallationId: null,
    request: noRequest,
  };
}

export function operatorActor(name: string, request: RequestInfo = noRequest): Actor {
  return {
    kind: 'operator',
    tenantId: PLATFORM_TENANT_ID,
    admin: true,
    tokenId: null,
    name,
    client: 'DASHBOARD',
    scopes: new Set(),
    expiresAt: null,
    requestsPerSecond: null,
    dataScopes: null,
    appInstallationId: null,
    request,
  };
}
