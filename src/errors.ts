/**
 * The named errors every domain service may throw. GraphQL maps each to a member of a mutation's
 * result union (graphql/types/errors.ts); anything else is unexpected and masked.
 */

export interface FieldProblem {
  /** Input path, e.g. ['input', 'type']. */
  path: string[];
  message: string;
}

/** Caught by resolvers: becomes ValidationError with per-field messages. */
export class InvalidInputError extends Error {
  readonly problems: FieldProblem[];
  constructor(problems: FieldProblem[]) {
    super(problems.map((p) => `${p.path.join('.')}: ${p.message}`).join('; '));
    this.problems = problems;
  }
}

/** Caught by resolvers: becomes NotFoundError. Also what another tenant's object looks like. */
export class NotFoundError extends Error {
  readonly resource: string;
  constructor(resource: string, id: string) {
    super(`${resource} ${id} not found`);
    this.resource = resource;
  }
}

/** Caught by resolvers: becomes ConflictError. */
export class ConflictError extends Error {}

/** Caught by resolvers: becomes ForbiddenError (a missing scope, or a protected object). */
export class ForbiddenError extends Error {}

/** Caught by resolvers: becomes PlanLimitError (the tenant's plan allows no more). */
export class PlanLimitError extends Error {
  readonly resource: string;
  readonly limit: number;
  constructor(resource: string, limit: number) {
    super(`the plan allows at most ${limit} ${resource}`);
    this.resource = resource;
    this.limit = limit;
  }
}

/** Caught by resolvers: becomes MissingScopeError (an app's scopes do not cover an event type). */
export class MissingScopeError extends Error {
  readonly scope: string;
  readonly eventType: string;
  readonly path: string[];
  constructor(scope: string, eventType: string, path: string[]) {
    super(`needs the scope ${scope} to receive ${eventType}`);
    this.scope = scope;
    this.eventType = eventType;
    this.path = path;
  }
}

/** A live subscription's resume cursor points to items no longer kept, or too many to replay. */
export class CursorExpiredError extends Error {}

/** A live subscriber fell too far behind: its subscription ends with this error. */
export class SlowSubscriberError extends Error {}

/** The bus did not start a live stream in time: subscribing again later may work. */
export class LiveUnavailableError extends Error {}

/** A caller holds as many live subscriptions as it may: subscribing again after ending one works. */
export class TooManySubscriptionsError extends Error {}
