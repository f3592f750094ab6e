import { ForbiddenError } from './errors.ts';

/**
 * Who may do what: every action a caller can take, and the scopes or the operator it needs. The
 * one table GraphQL's fields, node lookups and subscriptions, the audit export and the services
 * consult; nothing else decides a permission.
 */

/** Scopes a token may hold (DESIGN: GraphQL conventions). */
export const scopes = [
  'webhooks:read',
  'webhooks:manage',
  'events:publish',
  'events:read',
  'deliveries:read',
  'deliveries:manage',
  'audit:read',
  'tokens:manage',
  'inbound:read',
  'inbound:manage',
  'apps:manage',
] as const;
export type Scope = (typeof scopes)[number];

interface Rule {
  /** What the action is, for the refusal: "needs … to <what>". */
  what: string;
  /** Any one of these grants it. */
  scopes: readonly Scope[];
  /** The operator may (it holds no tenant scopes: it acts on the platform's own chain). */
  operator?: true;
  /** Every authenticated caller may. */
  everyone?: true;
}

export const permissions = {
  'viewer.read': { what: 'read who it is and its tenant', scopes: [], everyone: true },
  'tenants.manage': { what: 'administer tenants', scopes: [], operator: true },
  'catalog.manage': { what: 'manage the event-type catalog', scopes: [], operator: true },
  'webhooks.read': { what: 'read webhooks', scopes: ['webhooks:read', 'webhooks:manage'] },
  'webhooks.manage': { what: 'manage webhooks', scopes: ['webhooks:manage'] },
  'events.publish': { what: 'publish events', scopes: ['events:publish'] },
  'events.read': { what: 'read events', scopes: ['events:read'] },
  'deliveries.read': { what: 'read deliveries', scopes: ['deliveries:read', 'deliveries:manage'] },
  'deliveries.manage': { what: 'redeliver and replay deliveries', scopes: ['deliveries:manage'] },
  'audit.read': { what: 'read the audit log', scopes: ['audit:read'], operator: true },
  'tokens.manage': { what: 'manage API tokens', scopes: ['tokens:manage'] },
  'inbound.read': { what: 'read inbound sources and requests', scopes: ['inbound:read', 'inbound:manage'] },
  'inbound.manage': { what: 'manage inbound sources and replay requests', scopes: ['inbound:manage'] },
  'apps.publish': { what: 'publish apps', scopes: [], operator: true },
  'metrics.read': { what: "read the process's metrics", scopes: [], operator: true },
  'apps.read': { what: 'read the apps published', scopes: [], everyone: true },
  'apps.manage': { what: 'install, upgrade and uninstall apps', scopes: ['apps:manage'] },
} as const satisfies Record<string, Rule>;

export type Action = keyof typeof permissions;

/** What a permission is judged on: an Actor is one. */
export interface Caller {
  admin: boolean;
  scopes: ReadonlySet<Scope>;
}

export function permits(caller: Caller, action: Action): boolean {
  const rule: Rule = permissions[action];
  return (
    rule.everyone === true ||
    (caller.admin && rule.operator === true) ||
    rule.scopes.some((scope) => caller.scopes.has(scope))
  );
}

/** "needs the scope webhooks:manage to manage webhooks", for a refusal. */
export function requirement(action: Action): string {
  const rule: Rule = permissions[action];
  const who = [
    ...(rule.operator ? ['the operator token'] : []),
    ...(rule.scopes.length === 1 ? [`the scope ${rule.scopes[0]}`] : []),
    ...(rule.scopes.length > 1 ? [`one of the scopes ${rule.scopes.join(', ')}`] : []),
  ];
  return `needs ${who.join(' or ')} to ${rule.what}`;
}

/** Throws ForbiddenError unless the caller may. */
export function demand(caller: Caller, action: Action): void {
  if (!permits(caller, action)) throw new ForbiddenError(requirement(action));
}
