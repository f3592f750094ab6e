import DataLoader from 'dataloader';

/**
 * A DataLoader for the hot path's batched statements. A batch is sent when fewer than
 * `concurrency` of its kind are running and at least `intervalMs` after the previous one of its
 * kind started, else as soon as both hold: under load the calls made meanwhile gather into the
 * next batch (fewer, larger statements: a row costs far less than a statement, which PostgreSQL
 * parses and plans anew each time), and an idle system sends a lone call at once. No cache: every
 * call is new work. In S2, one statement at a time per kind delivered about a third more than two;
 * a 10 ms interval for the pipeline's statements, about a fifth more than none.
 *
 * A statement that PostgreSQL refuses for its data (SQLSTATE classes 22 and 23: a value out of
 * range, a character it cannot store) is tried again key by key, so one caller's bad row fails
 * that caller only, not the others sharing its batch (other tenants, say).
 */
export function batchLoader<K, V>(
  run: (keys: readonly K[]) => Promise<(V | Error)[]>,
  options: { maxBatchSize: number; concurrency: number; intervalMs?: number },
): DataLoader<K, V> {
  const intervalMs = options.intervalMs ?? 0;
  let running = 0;
  let lastStart = -Infinity;
  /** Batches not started yet, oldest first. */
  const queue: (() => void)[] = [];
  let wake: NodeJS.Timeout | NodeJS.Immediate | undefined;
  /** Starts queued batches in order while fewer than `concurrency` run and the interval has passed. */
  const pump = () => {
    wake = undefined;
    while (queue.length > 0 && running < options.concurrency) {
      const wait = lastStart + intervalMs - performance.now();
      if (wait > 0) {
        wake = setTimeout(pump, wait);
        return;
      }
      running++;
      lastStart = performance.now();
      queue.shift()!();
    }
  };
  // A new batch waits at least for the calls of this tick to join it.
  const schedule = (dispatch: () => void) => {
    queue.push(dispatch);
    wake ??= setImmediate(pump);
  };
  return new DataLoader<K, V>(
    async (keys) => {
      try {
        return await run(keys).catch((error: unknown) => {
          if (keys.length === 1 || !rejectsRow(error)) throw error;
          // One caller's row broke the statement: each goes alone, so only that one fails.
          return Promise.all(
            keys.map((key) =>
              run([key]).then(
                ([value]) => value!,
                (alone: unknown) => (alone instanceof Error ? alone : new Error(String(alone))),
              ),
            ),
          );
        });
      } finally {
        running--;
        if (!wake) pump();
      }
    },
    {
      cache: false,
      maxBatchSize: options.maxBatchSize,
      batchScheduleFn: schedule,
    },
  );
}

function rejectsRow(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23]/.test(code);
}
