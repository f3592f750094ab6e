import { ZodError } from 'zod';
import type { Consumption, EventBus } from '../bus/bus.ts';
import { decode, eventMessageV1, streams, subjects } from '../bus/contracts.ts';
import type { DeliveryQueue } from './queue.ts';
import type { DeliveryStore } from './delivery-store.ts';
import { fromMessage } from '../events/published-event.ts';
import type { WebhookMatcher } from '../webhooks/webhook-matcher.ts';
import type { Logger } from '../logger.ts';

/**
 * Turns events into deliveries: for each event on the stream, one delivery per active webhook of
 * the tenant subscribed to its type, each queued for the workers. The event message is acked only
 * once its deliveries are stored and queued; a redelivered event creates nothing twice and
 * re-queues what was not attempted yet.
 */
export class Dispatcher {
  private readonly bus: EventBus;
  private readonly store: DeliveryStore;
  private readonly queue: DeliveryQueue;
  private readonly matcher: WebhookMatcher;
  private readonly logger: Logger;
  private readonly prefix: string;
  private readonly subjectOf: (event: { tenantId: string; type: string }) => string;

  constructor(
    deps: {
      bus: EventBus;
      store: DeliveryStore;
      queue: DeliveryQueue;
      matcher: WebhookMatcher;
      logger: Logger;
    },
    options: { prefix: string },
  ) {
    this.bus = deps.bus;
    this.store = deps.store;
    this.queue = deps.queue;
    this.matcher = deps.matcher;
    this.logger = deps.logger;
    this.prefix = options.prefix;
    const { event } = subjects(options.prefix);
    this.subjectOf = ({ tenantId, type }) => event(tenantId, type);
  }

  start(concurrency = 256): Consumption {
    return this.bus.consume(
      {
        stream: streams(this.prefix).events.name,
        durable: 'dispatcher',
        ackWaitMs: 30_000,
        maxDeliver: 1_000,
        maxAckPending: concurrency * 4,
      },
      async (message) => {
        let event;
        try {
          event = fromMessage(decode(eventMessageV1, message.data));
        } catch (error) {
          if (!(error instanceof ZodError || error instanceof SyntaxError)) throw error;
          this.logger.error(
            { err: error, subject: message.subject },
            'dropped an event that breaks its contract',
          );
          return message.term();
        }
        // The subject is what a tenant's stream filter and permissions see: a body naming another
        // tenant (or type) must not reach that tenant's webhooks.
        if (message.subject.toLowerCase() !== this.subjectOf(event).toLowerCase()) {
          this.logger.error(
            { subject: message.subject, eventId: event.id, tenantId: event.tenantId, type: event.type },
            'dropped an event whose subject names another tenant or type',
          );
          return message.term();
        }
        try {
          const webhookIds = await this.matcher.matching(event.tenantId, event.type);
          const deliveries = await this.store.createForEvent(event, webhookIds);
          await Promise.all(deliveries.map((delivery) => this.queue.enqueue(delivery)));
        } catch (error) {
          this.logger.warn({ err: error, eventId: event.id }, 'dispatch failed; the event comes back');
          message.nak(Math.min(30_000, 500 * 2 ** Math.min(message.deliveryCount, 6)));
        }
      },
      { concurrency },
    );
  }
}
