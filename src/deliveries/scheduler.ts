import type { DeliveryQueue } from './queue.ts';
import type { DeliveryStore } from './delivery-store.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';

/**
 * Queues parked deliveries when their time comes: retries, deliveries of an endpoint that was busy
 * or whose circuit was open, and what redeliver, replay and test events marked due. Safe with any
 * number of workers: rows are claimed with SKIP LOCKED.
 */
export function startScheduler(
  deps: { store: DeliveryStore; queue: DeliveryQueue; logger: Logger },
  options: { intervalMs?: number } = {},
) {
  return pollLoop(
    () => deps.store.requeueDue(100, (delivery) => deps.queue.enqueue(delivery)),
    { intervalMs: options.intervalMs ?? 250, what: 'delivery scheduler' },
    deps.logger,
  );
}
