import { SpanKind } from '@opentelemetry/api';
import type { EventBus } from '../bus/bus.ts';
import { deliveryMessageV1, encode, subjects } from '../bus/contracts.ts';
import { inSpan, traceHeaders } from '../tracing.ts';
import type { Delivery } from './delivery.entity.ts';

/** A delivery as the queue needs it. */
export type QueuedDelivery = Pick<Delivery, 'id' | 'tenantId' | 'webhookId' | 'attempts' | 'updatedAt'>;

/**
 * Puts a delivery's next attempt on the work queue. The message id names the queueing: attempt and
 * the delivery's updatedAt, which every queueing sets anew. Publishing the same queueing twice
 * (a redelivered event, a retry after a crash) stores it once; a new queueing of the same attempt
 * (after a parked delivery's wait) is a new message. Repeats that still reach a worker are dropped
 * there by the attempt number.
 */
export class DeliveryQueue {
  private readonly bus: EventBus;
  private readonly subjects: ReturnType<typeof subjects>;

  constructor(bus: EventBus, prefix: string) {
    this.bus = bus;
    this.subjects = subjects(prefix);
  }

  /** In the active trace (the dispatch's): the message's headers carry it on to the attempt. */
  enqueue(delivery: QueuedDelivery): Promise<void> {
    const attempt = delivery.attempts + 1;
    const attributes = { 'herald.delivery.id': delivery.id, 'herald.attempt': attempt };
    return inSpan('delivery.queue', { kind: SpanKind.PRODUCER, attributes }, async () => {
      await this.bus.publish(
        this.subjects.delivery(delivery.tenantId, delivery.webhookId),
        encode(deliveryMessageV1, {
          v: 1,
          deliveryId: delivery.id,
          tenantId: delivery.tenantId,
          webhookId: delivery.webhookId,
          attempt,
        }),
        { msgId: `${delivery.id}:${attempt}:${delivery.updatedAt.getTime()}`, headers: traceHeaders() },
      );
    });
  }
}
