import { LRUCache } from 'lru-cache';
import { covers } from '../apps/data-scopes.ts';
import type { Orm } from '../db/orm.ts';
import { parseEventTypeName } from '../event-types/event-type.service.ts';
import { patternMatches } from './event-patterns.ts';
import { WebhookEntity } from './webhook.entity.ts';

interface Subscriber {
  id: string;
  subscribedEvents: string[];
  /** An app's webhook: it receives only types its scopes cover (catalog types added later too). */
  dataScopes: string[] | null | undefined;
}

/**
 * Which active webhooks of a tenant receive an event type. Each tenant's active webhooks are
 * cached, and dropped when a webhook of the tenant changes (announced on the bus by whichever
 * process changed it), or after `ttlMs` should an announcement be lost.
 */
export class WebhookMatcher {
  private readonly orm: Orm;
  private readonly cache: LRUCache<string, Subscriber[]>;

  constructor(orm: Orm, options: { ttlMs?: number; maxTenants?: number } = {}) {
    this.orm = orm;
    // Concurrent misses for one tenant share one query.
    this.cache = new LRUCache({
      max: options.maxTenants ?? 10_000,
      ttl: options.ttlMs ?? 1_000,
      fetchMethod: (tenantId) =>
        this.orm.em
          .fork()
          .find(
            WebhookEntity,
            { tenantId, isActive: true },
            { fields: ['id', 'subscribedEvents', 'dataScopes'], filters: false },
          ),
    });
  }

  async matching(tenantId: string, type: string): Promise<string[]> {
    // A change announced while the webhooks were being read aborts that read: read them again.
    const subscribers = (await this.cache.fetch(tenantId).catch(() => this.cache.fetch(tenantId)))!;
    const meta = parseEventTypeName(type);
    return subscribers
      .filter((w) => w.subscribedEvents.some((p) => patternMatches(p, type)))
      .filter((w) => !w.dataScopes || covers(new Set(w.dataScopes), meta))
      .map((w) => w.id);
  }

  invalidate(tenantId: string): void {
    this.cache.delete(tenantId);
  }
}
