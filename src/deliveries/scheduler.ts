import type { Logger } from '../logger.ts';
import { inTraceOf } from '../tracing.ts';
import { pollLoop } from '../util/poll-loop.ts';
import type { DeliveryQueue } from './queue.ts';
import type { Parking } from './store/parking.ts';

/**
 * Queues parked deliveries when their time comes: retries, deliveries of an endpoint that was busy
 * or whose circuit was open, and what redeliver, replay and test events marked due. Safe with any
 * number of workers: rows are claimed with SKIP LOCKED. Every `resumeIntervalMs` it also marks due
 * up to RESUME_BATCH paused deliveries of resumed tenants: a large backlog goes out at a measured
 * pace (500 a second by default), behind other tenants' due retries, not as one flood of the queue.
 */
const RESUME_BATCH = 1_000;

export function startScheduler(
  deps: {
    parking: Pick<Parking, 'requeueDue' | 'resumePaused'>;
    queue: Pick<DeliveryQueue, 'enqueue'>;
    logger: Logger;
  },
  options: { intervalMs?: number; resumeIntervalMs?: number } = {},
) {
  const loops = [
    pollLoop(
      () =>
        deps.parking.requeueDue(100, (delivery, traceparent) =>
          inTraceOf(traceparent, () => deps.queue.enqueue(delivery)),
        ),
      { intervalMs: options.intervalMs ?? 250, what: 'delivery scheduler' },
      deps.logger,
    ),
    pollLoop(
      // Zero: the loop waits its interval after every pass, whatever the pass resumed.
      async () => (await deps.parking.resumePaused(RESUME_BATCH), 0),
      { intervalMs: options.resumeIntervalMs ?? 2_000, what: 'resuming paused deliveries' },
      deps.logger,
    ),
  ];
  return {
    async stop() {
      await Promise.all(loops.map((loop) => loop.stop()));
    },
  };
}
