import DataLoader from 'dataloader';

/**
 * A DataLoader for the hot path's batched statements. A batch is sent when fewer than
 * `concurrency` of its kind are running, else as soon as one of those finishes: under load the
 * calls made meanwhile gather into the next batch (fewer, larger statements: a row costs far less
 * than a round trip), and an idle system sends a lone call at once. No cache: every call is new
 * work. In S2, one statement at a time per kind delivered about a third more than two.
 */
export function batchLoader<K, V>(
  run: (keys: readonly K[]) => Promise<(V | Error)[]>,
  options: { maxBatchSize: number; concurrency: number },
): DataLoader<K, V> {
  let running = 0;
  const waiting: (() => void)[] = [];
  const start = (dispatch: () => void) => {
    running++;
    dispatch();
  };
  return new DataLoader<K, V>(
    async (keys) => {
      try {
        return await run(keys);
      } finally {
        running--;
        const next = waiting.shift();
        if (next) start(next);
      }
    },
    {
      cache: false,
      maxBatchSize: options.maxBatchSize,
      batchScheduleFn: (dispatch) =>
        setImmediate(() => (running < options.concurrency ? start(dispatch) : waiting.push(dispatch))),
    },
  );
}
