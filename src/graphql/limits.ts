import {
  BREAK,
  GraphQLError,
  NoSchemaIntrospectionCustomRule,
  OperationTypeNode,
  getOperationAST,
  getVariableValues,
  parse,
  visit,
  type ASTNode,
  type DocumentNode,
  type ExecutionArgs,
  type ParseOptions,
  type Source,
  type ValidationRule,
} from 'graphql';
import type { Plugin, YogaLogger } from 'graphql-yoga';
import { storable } from '../input.ts';
import type { Logger } from '../logger.ts';

/** Request limits the complexity plugin does not cover (it limits depth, breadth and cost). */

export const disableIntrospection = (): Plugin => ({
  onValidate({ addValidationRule }) {
    addValidationRule(NoSchemaIntrospectionCustomRule);
  },
});

function maxAliases(max: number): ValidationRule {
  return (context) => {
    let count = 0;
    return {
      Field(node) {
        if (node.alias && ++count === max + 1) {
          context.reportError(new GraphQLError(`too many aliases (at most ${max})`, { nodes: [node] }));
        }
      },
    };
  };
}

export const limitAliases = (max: number): Plugin => ({
  onValidate({ addValidationRule }) {
    addValidationRule(maxAliases(max));
  },
});

export const limitTokens = (maxTokens: number): Plugin => ({
  onParse({ setParseFn }) {
    setParseFn((source, options) =>
      parse(source as string | Source, { ...(options as ParseOptions | undefined), maxTokens }),
    );
  },
});

export function yogaLogger(logger: Logger): YogaLogger {
  const level =
    (name: 'debug' | 'info' | 'warn' | 'error') =>
    (...args: unknown[]) => {
      const [first, ...rest] = args;
      if (first instanceof Error) logger[name]({ err: first }, rest.map(String).join(' ') || first.message);
      else logger[name](args.map((a) => (typeof a === 'string' ? a : JSON.stringify(a))).join(' '));
    };
  return { debug: level('debug'), info: level('info'), warn: level('warn'), error: level('error') };
}

/** How deep a JSON value (a variable, a literal) may nest. */
export const MAX_INPUT_DEPTH = 64;

/**
 * Refuses, as BAD_USER_INPUT and before execution, input that is wrong or that PostgreSQL cannot
 * hold, for every operation over every transport:
 * - variables that do not coerce, each named: graphql-js coerces them first (graphql-jit's
 *   compiled coercion left the code out, and could name another variable);
 * - values nested deeper than MAX_INPUT_DEPTH (a payload 3,000 deep overflowed the stack);
 * - in queries and subscriptions, a string with a NUL character or an unpaired surrogate in the
 *   variables or the literals (filters gave internal errors). A mutation's strings are its
 *   services' to check: a refusal is then a ValidationError naming the field, in its result.
 */
export const checkedInput = (): Plugin => ({
  onExecute({ args, setResultAndStopExecution }) {
    const errors = inputErrors(args);
    if (errors) setResultAndStopExecution({ errors });
  },
  onSubscribe({ args, setResultAndStopExecution }) {
    const errors = inputErrors(args);
    if (errors) setResultAndStopExecution({ errors });
  },
});

const refuse = (message: string, nodes?: ASTNode | readonly ASTNode[]) =>
  new GraphQLError(message, { ...(nodes ? { nodes } : {}), extensions: { code: 'BAD_USER_INPUT' } });

function inputErrors({
  document,
  operationName,
  schema,
  variableValues,
}: ExecutionArgs): GraphQLError[] | null {
  const operation = getOperationAST(document, operationName);
  if (operation?.variableDefinitions?.length) {
    const coerced = getVariableValues(schema, operation.variableDefinitions, variableValues ?? {}, {
      maxErrors: 20,
    });
    if (coerced.errors) return coerced.errors.map((error) => refuse(error.message, error.nodes));
  }
  const strings = operation?.operation !== OperationTypeNode.MUTATION;
  const problem = variableProblem(variableValues, strings);
  if (problem) return [problem];
  const literals = literalProblems(document);
  const literal = literals.depth ?? (strings ? literals.strings : null);
  return literal ? [literal] : null;
}

/** An iterative walk: the input's own depth must not be what overflows the stack. */
function variableProblem(variables: unknown, strings: boolean): GraphQLError | null {
  const stack: { value: unknown; depth: number; name: string }[] = [];
  if (variables && typeof variables === 'object')
    for (const [name, value] of Object.entries(variables)) stack.push({ value, depth: 1, name });
  while (stack.length > 0) {
    const { value, depth, name } = stack.pop()!;
    if (depth > MAX_INPUT_DEPTH)
      return refuse(`Variable "$${name}" is nested deeper than ${MAX_INPUT_DEPTH} levels`);
    if (typeof value === 'string') {
      if (strings && !storable(value))
        return refuse(
          `Variable "$${name}" holds a NUL character or an unpaired surrogate, which cannot be stored`,
        );
    } else if (value && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        if (strings && !storable(key)) return refuse(`Variable "$${name}" holds a key that cannot be stored`);
        stack.push({ value: inner, depth: depth + 1, name });
      }
    }
  }
  return null;
}

interface LiteralProblems {
  depth: GraphQLError | null;
  strings: GraphQLError | null;
}

/** Per document: yoga hands every request of the same text the same parsed document. */
const literalCache = new WeakMap<DocumentNode, LiteralProblems>();

function literalProblems(document: DocumentNode): LiteralProblems {
  const known = literalCache.get(document);
  if (known) return known;
  const found: LiteralProblems = { depth: null, strings: null };
  let depth = 0;
  const nest = {
    enter(node: ASTNode) {
      if (++depth <= MAX_INPUT_DEPTH) return undefined;
      found.depth = refuse(`A value is nested deeper than ${MAX_INPUT_DEPTH} levels`, node);
      return BREAK;
    },
    leave() {
      depth--;
    },
  };
  visit(document, {
    StringValue(node) {
      if (!storable(node.value))
        found.strings ??= refuse(
          'A string holds a NUL character or an unpaired surrogate, which cannot be stored',
          node,
        );
    },
    ObjectValue: nest,
    ListValue: nest,
  });
  literalCache.set(document, found);
  return found;
}
