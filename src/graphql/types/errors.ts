import {
  ConflictError,
  ForbiddenError,
  InvalidInputError,
  NotFoundError,
  MissingScopeError,
  PlanLimitError,
  type FieldProblem,
} from '../../errors.ts';
import { builder } from '../builder.ts';

/** The typed errors a mutation's result union may hold (DESIGN: GraphQL conventions). */

const ErrorInterface = builder.interfaceRef<Error>('Error').implement({
  fields: (t) => ({ message: t.exposeString('message') }),
});

const FieldError = builder.objectRef<FieldProblem>('FieldError').implement({
  description: 'One problem with one input field.',
  fields: (t) => ({
    path: t.exposeStringList('path', { description: 'Path of the field, e.g. ["input", "type"].' }),
    message: t.exposeString('message'),
  }),
});

builder.objectType(InvalidInputError, {
  name: 'ValidationError',
  description: 'The input was refused; nothing changed.',
  interfaces: [ErrorInterface],
  fields: (t) => ({ fields: t.field({ type: [FieldError], resolve: (error) => error.problems }) }),
});

builder.objectType(NotFoundError, {
  name: 'NotFoundError',
  interfaces: [ErrorInterface],
  fields: (t) => ({ resource: t.exposeString('resource') }),
});

builder.objectType(ConflictError, { name: 'ConflictError', interfaces: [ErrorInterface] });

builder.objectType(ForbiddenError, { name: 'ForbiddenError', interfaces: [ErrorInterface] });

builder.objectType(MissingScopeError, {
  name: 'MissingScopeError',
  description: "An app's scopes do not cover an event type it would receive; nothing changed.",
  interfaces: [ErrorInterface],
  fields: (t) => ({
    scope: t.exposeString('scope', { description: 'The scope it lacks, e.g. crm.contact:read.' }),
    eventType: t.exposeString('eventType'),
    path: t.exposeStringList('path', { description: 'The input field naming the event.' }),
  }),
});

builder.objectType(PlanLimitError, {
  name: 'PlanLimitError',
  description: "The tenant's plan allows no more; nothing changed.",
  interfaces: [ErrorInterface],
  fields: (t) => ({ resource: t.exposeString('resource'), limit: t.exposeInt('limit') }),
});
