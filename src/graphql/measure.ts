import { Kind, getOperationAST, type ExecutionArgs, type ExecutionResult } from 'graphql';
import type { Plugin } from 'graphql-yoga';
import type { Metrics } from '../metrics.ts';

type OperationMetrics = Pick<Metrics, 'graphqlOperations' | 'graphqlSeconds'>;

/**
 * The labels of an operation: its type and first root field. Operation names are the client's
 * own words (unbounded); a root field of a validated document is one the schema has.
 */
function labelsOf({ document, operationName }: Pick<ExecutionArgs, 'document' | 'operationName'>) {
  const operation = getOperationAST(document, operationName);
  const first = operation?.selectionSet.selections.find((selection) => selection.kind === Kind.FIELD);
  return { type: operation?.operation ?? 'unknown', field: first?.name.value ?? 'unknown' };
}

const failed = (result: ExecutionResult) => (result.errors?.length ? 'error' : 'ok');

const invalid = { type: 'unknown', field: 'unknown', result: 'invalid' } as const;

/**
 * Counts GraphQL operations by type, root field and result, and times queries and mutations;
 * a subscription counts once, when it starts (ok) or is refused (error). A document that does not
 * parse or validate counts as `invalid`; a caller refused before execution, as `refused`
 * (refusedOperation, from the context).
 */
export const measureOperations = (metrics: OperationMetrics): Plugin => ({
  onParse() {
    return ({ result }) => {
      if (result instanceof Error) metrics.graphqlOperations.inc(invalid);
    };
  },
  onValidate() {
    return ({ valid }) => {
      if (!valid) metrics.graphqlOperations.inc(invalid);
    };
  },
  onExecute({ args }) {
    const started = performance.now();
    const labels = labelsOf(args);
    return {
      onExecuteDone({ result }) {
        if (Symbol.asyncIterator in result) return;
        metrics.graphqlOperations.inc({ ...labels, result: failed(result) });
        metrics.graphqlSeconds.observe(labels, (performance.now() - started) / 1000);
      },
    };
  },
  onSubscribe({ args }) {
    const labels = labelsOf(args);
    return {
      onSubscribeResult({ result }) {
        const outcome = Symbol.asyncIterator in result ? 'ok' : failed(result);
        metrics.graphqlOperations.inc({ ...labels, result: outcome });
      },
    };
  },
});

/** Counts an operation refused before execution: no valid token, or over the rate limit. */
export const refusedOperation = (metrics: OperationMetrics) =>
  metrics.graphqlOperations.inc({ type: 'unknown', field: 'unknown', result: 'refused' });
