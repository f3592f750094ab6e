import { PothosValidationError } from '@pothos/core';
import { GraphQLError, type ExecutionArgs } from 'graphql';
import { maskError, useErrorHandler, type Plugin } from 'graphql-yoga';
import {
  ConflictError,
  CursorExpiredError,
  ForbiddenError,
  InvalidInputError,
  LiveUnavailableError,
  NotFoundError,
  PlanLimitError,
  SlowSubscriberError,
  TooManySubscriptionsError,
} from '../errors.ts';
import type { Logger } from '../logger.ts';
import type { Context } from './context.ts';

/**
 * How errors leave GraphQL: named domain errors outside a result union still reach the client
 * with a code; an unavailable database is UNAVAILABLE; anything else is masked, and logged.
 */

export const unauthenticated = () =>
  new GraphQLError('missing or invalid bearer token', {
    extensions: {
      code: 'UNAUTHENTICATED',
      http: { status: 401, headers: { 'www-authenticate': 'Bearer' } },
    },
  });

/** A token over its rate: HTTP 429 with Retry-After. */
export const rateLimited = (waitMs: number) =>
  new GraphQLError(`rate limit exceeded: try again in ${Math.ceil(waitMs / 1000)} s`, {
    extensions: {
      code: 'RATE_LIMITED',
      http: { status: 429, headers: { 'retry-after': String(Math.ceil(waitMs / 1000)) } },
    },
  });

const codes = new Map<abstract new (...args: never[]) => Error, string>([
  [InvalidInputError, 'BAD_USER_INPUT'],
  [NotFoundError, 'NOT_FOUND'],
  [ForbiddenError, 'FORBIDDEN'],
  [ConflictError, 'CONFLICT'],
  [PlanLimitError, 'PLAN_LIMIT'],
  [CursorExpiredError, 'CURSOR_EXPIRED'],
  [SlowSubscriberError, 'SLOW_SUBSCRIBER'],
  [LiveUnavailableError, 'UNAVAILABLE'],
  [TooManySubscriptionsError, 'TOO_MANY_SUBSCRIPTIONS'],
]);

const isNamed = (error: unknown) => [...codes.keys()].some((type) => error instanceof type);

/** yoga's maskError: `isUnavailable` tells a database (or bus) that did not answer. */
export function maskUnexpected(isUnavailable: (error: unknown) => boolean) {
  return (error: unknown, message: string, isDev?: boolean): Error => {
    const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
    const located = error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {};
    // Malformed or wrong-type global ids, and other arguments Pothos refuses: the client's input.
    if (original instanceof PothosValidationError) {
      const text = original.message.length > 200 ? `${original.message.slice(0, 200)}…` : original.message;
      return new GraphQLError(text, { ...located, extensions: { code: 'BAD_USER_INPUT' } });
    }
    for (const [type, code] of codes) {
      if (original instanceof type) {
        const fields = original instanceof InvalidInputError ? { fields: original.problems } : {};
        return new GraphQLError(original.message, { ...located, extensions: { code, ...fields } });
      }
    }
    // Yoga's own refusals of a request (a body that is not JSON, say) echo the parser's
    // exception: the client gets the message and the code only.
    if (error instanceof GraphQLError && !error.originalError && error.extensions.originalError) {
      const {
        originalError: _echo,
        http,
        ...extensions
      } = error.extensions as {
        originalError: unknown;
        http?: { status?: number };
      };
      return new GraphQLError(error.message, {
        ...located,
        // A status that holds whatever the client accepts: the request was not one.
        extensions: { ...extensions, http: { status: http?.status ?? 400 } },
      });
    }
    if (isUnavailable(original)) {
      return new GraphQLError('the database is unavailable; try again shortly', {
        ...located,
        extensions: { code: 'UNAVAILABLE' },
      });
    }
    return maskError(error, message, isDev);
  };
}

/** Logs every error that is neither a GraphQL error nor a named domain error: those are bugs or outages. */
export const logUnexpected = (logger: Logger): Plugin<Context> =>
  useErrorHandler(({ errors, context, phase }) => {
    // In the execution phase envelop hands over the execution args, not the context.
    const ctx = (phase === 'execution' ? (context as unknown as ExecutionArgs).contextValue : context) as
      Partial<Context> | undefined;
    for (const error of errors) {
      const original = error instanceof GraphQLError ? error.originalError : error;
      if (original && !(original instanceof GraphQLError) && !isNamed(original)) {
        (ctx?.logger ?? logger).error({ err: original, phase }, 'unexpected error');
      }
    }
  });
