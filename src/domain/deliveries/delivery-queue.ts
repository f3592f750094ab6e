import type { EventBus } from '../../bus/bus.ts';
import { deliveryMessageV1, encode, subjects } from '../../bus/contracts.ts';
import type { Delivery } from './delivery.entity.ts';

/**
 * Puts a delivery's next attempt on the work queue. The message id names the attempt, so queueing
 * the same attempt twice (dispatcher redelivered, scheduler after a crash) stores it once.
 */
export class DeliveryQueue {
  private readonly bus: EventBus;
  private readonly subjects: ReturnType<typeof subjects>;

  constructor(bus: EventBus, prefix: string) {
    this.bus = bus;
    this.subjects = subjects(prefix);
  }

  async enqueue(delivery: Pick<Delivery, 'id' | 'tenantId' | 'webhookId' | 'attempts'>): Promise<void> {
    const attempt = delivery.attempts + 1;
    await this.bus.publish(
      this.subjects.delivery(delivery.tenantId, delivery.webhookId),
      encode(deliveryMessageV1, {
        v: 1,
        deliveryId: delivery.id,
        tenantId: delivery.tenantId,
        webhookId: delivery.webhookId,
        attempt,
      }),
      { msgId: `${delivery.id}:${attempt}` },
    );
  }
}
