import type { DeliveryQueue } from '../domain/deliveries/delivery-queue.ts';
import type { DeliveryStore } from '../domain/deliveries/delivery-store.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';

/**
 * Queues parked deliveries when their time comes (and queued ones that look lost). Safe with any
 * number of workers: rows are claimed with SKIP LOCKED.
 */
export function startScheduler(
  deps: { store: DeliveryStore; queue: DeliveryQueue; logger: Logger },
  options: { intervalMs?: number; stuckAfterMs?: number } = {},
) {
  return pollLoop(
    () =>
      deps.store.requeueDue(500, options.stuckAfterMs ?? 5 * 60_000, (delivery) =>
        deps.queue.enqueue(delivery),
      ),
    { intervalMs: options.intervalMs ?? 500, what: 'delivery scheduler' },
    deps.logger,
  );
}
