import { setTimeout as delay } from 'node:timers/promises';
import type { Logger } from '../logger.ts';

/**
 * Runs `pass` every `intervalMs` until stopped; a pass that did work (returned > 0) is repeated at
 * once. A failing pass is logged and retried on the next tick.
 */
export function pollLoop(
  pass: () => Promise<number>,
  options: { intervalMs: number; what: string },
  logger: Logger,
): { stop(): Promise<void> } {
  const controller = new AbortController();
  const loop = (async () => {
    while (!controller.signal.aborted) {
      try {
        while ((await pass()) > 0 && !controller.signal.aborted);
      } catch (error) {
        logger.warn({ err: error }, `${options.what} failed; retrying`);
      }
      await delay(options.intervalMs, undefined, { signal: controller.signal }).catch(() => undefined);
    }
  })();
  return {
    async stop() {
      controller.abort();
      await loop;
    },
  };
}
