import type { EventBus } from '../bus/bus.ts';
import { decode, encode, subjects, webhooksChangedV1 } from '../bus/contracts.ts';
import { newId } from '../db/ids.ts';
import type { Logger } from '../logger.ts';
import type { WebhookService } from './webhook.service.ts';

/**
 * Changes to a tenant's webhooks, across processes: every process announces the changes it makes
 * on the bus, and whoever caches webhooks (the dispatcher's matcher) hears them from every process.
 */
export class WebhookChanges {
  private readonly bus: EventBus;
  private readonly webhooks: WebhookService;
  private readonly subjects: ReturnType<typeof subjects>;
  private readonly logger: Logger;

  constructor(
    deps: { bus: EventBus; webhooks: WebhookService; logger: Logger },
    options: { prefix: string },
  ) {
    this.bus = deps.bus;
    this.webhooks = deps.webhooks;
    this.subjects = subjects(options.prefix);
    this.logger = deps.logger;
  }

  /** Puts each change made in this process on the bus. */
  announce(): void {
    this.webhooks.events.on('changed', (tenantId) => {
      this.bus
        .publish(this.subjects.webhooksChanged(tenantId), encode(webhooksChangedV1, { v: 1, tenantId }), {
          msgId: newId(),
        })
        .catch((error: unknown) =>
          this.logger.warn({ err: error, tenantId }, 'could not announce a webhook change'),
        );
    });
  }

  /**
   * Calls `changed` with the tenant of every change: at once for this process's, from the bus for
   * the others' (a cache's TTL covers an announcement lost).
   */
  listen(changed: (tenantId: string) => void): { stop(): void } {
    this.webhooks.events.on('changed', changed);
    const subscription = this.bus.subscribe(this.subjects.webhooksChanged('*'), (message) => {
      try {
        changed(decode(webhooksChangedV1, message.data).tenantId);
      } catch (error) {
        this.logger.warn({ err: error }, 'dropped a webhook change announcement that breaks its contract');
      }
    });
    return {
      stop: () => {
        this.webhooks.events.off('changed', changed);
        subscription.unsubscribe();
      },
    };
  }
}
