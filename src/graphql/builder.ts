import SchemaBuilder from '@pothos/core';
import ComplexityPlugin from '@pothos/plugin-complexity';
import DataloaderPlugin from '@pothos/plugin-dataloader';
import ErrorsPlugin from '@pothos/plugin-errors';
import RelayPlugin from '@pothos/plugin-relay';
import ScopeAuthPlugin from '@pothos/plugin-scope-auth';
import ValidationPlugin from '@pothos/plugin-validation';
import { GraphQLError, Kind, valueFromASTUntyped } from 'graphql';
import { InvalidInputError } from '../errors.ts';
import { STORABLE_DATE_RANGE, storableDate } from '../input.ts';
import { AuthScopeFailureType, type AuthFailure } from '@pothos/plugin-scope-auth';
import { permits, requirement, type Action } from '../permissions.ts';
import type { Context } from './context.ts';

export const builder = new SchemaBuilder<{
  Context: Context;
  DefaultFieldNullability: false;
  Scalars: {
    DateTime: { Input: Date; Output: Date };
    JSON: { Input: unknown; Output: unknown };
    ID: { Input: string; Output: string };
  };
  /** `authScopes: { can: 'webhooks.read' }`: an action of the permissions table. */
  AuthScopes: { can: Action };
}>({
  // Scope auth wraps everything; complexity must come before errors so that a depth or breadth
  // failure stays a top-level error instead of a union member; errors before dataloader.
  plugins: [ScopeAuthPlugin, ComplexityPlugin, RelayPlugin, ErrorsPlugin, ValidationPlugin, DataloaderPlugin],
  defaultFieldNullability: false,
  scopeAuth: {
    authorizeOnSubscribe: true,
    authScopes: (ctx) => ({ can: (action) => permits(ctx.actor, action) }),
    unauthorizedError: (_parent, _ctx, _info, result) =>
      new GraphQLError(refusal(result.message, result.failure), { extensions: { code: 'FORBIDDEN' } }),
  },
  complexity: {
    defaultComplexity: 1,
    defaultListMultiplier: 10,
    limit: { complexity: 5_000, depth: 10, breadth: 200 },
  },
  relay: {
    clientMutationId: 'omit',
    cursorType: 'String',
    nodesQueryOptions: false,
  },
  // Only the listed domain error classes become union members; anything else is masked.
  errors: { defaultTypes: [], unsafelyHandleInputErrors: true },
  validation: {
    // Argument validation failures become the same ValidationError that services raise.
    validationError: (failure) =>
      new InvalidInputError(
        failure.issues.map((issue) => ({
          path: (issue.path ?? []).map((p) => String(typeof p === 'object' ? p.key : p)),
          message: issue.message,
        })),
      ),
  },
});

/** Pothos' message, and what the field needs. A field's scope map fails as a list of one. */
function refusal(message: string, failure: AuthFailure): string {
  const leaf =
    failure.kind === AuthScopeFailureType.AnyAuthScopes && failure.failures.length === 1
      ? failure.failures[0]!
      : failure;
  return leaf.kind === AuthScopeFailureType.AuthScope && leaf.scope === 'can'
    ? `${message}: ${requirement(leaf.parameter as Action)}`
    : message;
}

/**
 * Accepts only ISO-8601 date-times (`2026-11-23T10:00:00Z`) PostgreSQL can store, from variables
 * and literals alike.
 */
function parseDateTime(value: unknown): Date {
  const date = typeof value === 'string' && /^\d{4}-\d{2}-\d{2}T/.test(value) ? new Date(value) : undefined;
  if (!date || Number.isNaN(date.getTime()))
    throw new GraphQLError('DateTime must be an ISO-8601 date-time string', {
      extensions: { code: 'BAD_USER_INPUT' },
    });
  if (!storableDate(date))
    throw new GraphQLError(`DateTime ${STORABLE_DATE_RANGE}`, { extensions: { code: 'BAD_USER_INPUT' } });
  return date;
}

builder.scalarType('DateTime', {
  description: 'An ISO-8601 date-time with offset, e.g. 2026-11-23T10:00:00.000Z',
  serialize: (value) => value.toISOString(),
  parseValue: parseDateTime,
  parseLiteral: (ast) => parseDateTime(ast.kind === Kind.STRING ? ast.value : undefined),
});

builder.scalarType('JSON', {
  description: 'Any JSON value',
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (ast, variables) => valueFromASTUntyped(ast, variables),
});

builder.queryType({});
builder.mutationType({});
builder.subscriptionType({});
