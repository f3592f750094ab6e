import { describe, expect, it, vi } from 'vitest';
import { batchLoader } from '../../src/db/batch-loader.ts';
import { waitFor } from '../support/wait.ts';

describe('batch loader', () => {
  it('sends a lone call at once, gathers the calls of the next interval into one batch, and is prompt again when idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate', 'performance'] });
    try {
      const batches: { keys: number[]; at: number }[] = [];
      const load = batchLoader<number, number>(
        async (keys) => {
          batches.push({ keys: [...keys], at: performance.now() });
          return keys.map((k) => k * 2);
        },
        { maxBatchSize: 100, concurrency: 1, intervalMs: 50 },
      );
      const t0 = performance.now();
      const first = load.load(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(await first).toBe(2);

      const next: Promise<number>[] = [];
      for (const key of [2, 3, 4]) {
        next.push(load.load(key));
        await vi.advanceTimersByTimeAsync(10);
      }
      await vi.advanceTimersByTimeAsync(50);
      expect(await Promise.all(next)).toEqual([4, 6, 8]);

      await vi.advanceTimersByTimeAsync(200);
      const idle = load.load(5);
      await vi.advanceTimersByTimeAsync(1);
      expect(await idle).toBe(10);

      expect(batches).toEqual([
        { keys: [1], at: t0 },
        { keys: [2, 3, 4], at: t0 + 50 },
        { keys: [5], at: t0 + 281 },
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('starts the batches that waited for a running one oldest first', async () => {
    const started: number[][] = [];
    let finishFirst!: () => void;
    const firstRuns = new Promise<void>((resolve) => (finishFirst = resolve));
    const load = batchLoader<number, number>(
      async (keys) => {
        started.push([...keys]);
        if (keys.includes(1)) await firstRuns;
        return [...keys];
      },
      { maxBatchSize: 2, concurrency: 1 },
    );
    const first = load.load(1);
    await waitFor(() => started.length === 1, { what: 'the first batch to start' });
    const rest = [2, 3, 4, 5, 6].map((key) => load.load(key));
    finishFirst();
    await Promise.all([first, ...rest]);
    expect(started).toEqual([[1], [2, 3], [4, 5], [6]]);
  });
});
