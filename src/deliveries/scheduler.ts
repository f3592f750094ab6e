import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';
import type { DeliveryQueue } from './queue.ts';
import type { Parking } from './store/parking.ts';

/**
 * Queues parked deliveries when their time comes: retries, deliveries of an endpoint that was busy
 * or whose circuit was open, and what redeliver, replay and test events marked due. Safe with any
 * number of workers: rows are claimed with SKIP LOCKED.
 */
export function startScheduler(
  deps: { parking: Pick<Parking, 'requeueDue'>; queue: Pick<DeliveryQueue, 'enqueue'>; logger: Logger },
  options: { intervalMs?: number } = {},
) {
  return pollLoop(
    () => deps.parking.requeueDue(100, (delivery) => deps.queue.enqueue(delivery)),
    { intervalMs: options.intervalMs ?? 250, what: 'delivery scheduler' },
    deps.logger,
  );
}
