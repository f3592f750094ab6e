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
] as const;
export type Scope = (typeof scopes)[number];

/** Who is calling: every service method takes it first, and every query is scoped by its tenant. */
export interface Actor {
  tenantId: string;
  /** The operator: may manage what all tenants share, such as the event-type catalog. */
  admin: boolean;
  scopes: ReadonlySet<Scope>;
}
