import type { AuditService } from '../../audit/audit.service.ts';
import { systemActor } from '../../tenancy/actor.ts';
import { webhookEntry, type AuditedWebhook } from '../../webhooks/webhook-audit.ts';
import {
  AttemptOutboxEntity,
  DeliveryAttemptEntity,
  DeliveryEntity,
  type DeliveryAttempt,
} from '../delivery.entity.ts';
import type { Settlement } from '../outcome.ts';
import type { AttemptJob } from './attempt-jobs.ts';

type Failure = Exclude<Settlement, { status: 'SUCCEEDED' }>;

interface DisabledRow {
  id: string;
  name: string | null;
  url: string;
  subscribed_events: string[];
  external_id: string | null;
  managed_by: AuditedWebhook['managedBy'];
  disabled_at: Date | string;
  disabled_reason: string;
}

/**
 * Records failed attempts, each in a transaction of its own: the attempt row with its outbox
 * entry (attempt-outbox.ts), the delivery's status, the webhook's lastFailureAt, and the webhook disabled when the settlement says so
 * (outcome.ts decides), audited as Herald itself. Failures are rare next to successes, and
 * disabling needs the audit chain's lock: they are not batched.
 */
export class FailureRecords {
  private readonly audit: AuditService;
  private readonly onWebhookDisabled: (tenantId: string) => void;

  constructor(deps: { audit: AuditService }, options: { onWebhookDisabled: (tenantId: string) => void }) {
    this.audit = deps.audit;
    this.onWebhookDisabled = options.onWebhookDisabled;
  }

  /** The attempt as stored, or null when it was recorded already (a repeated message raced this one). */
  async record(
    job: AttemptJob,
    attempt: DeliveryAttempt,
    settlement: Failure,
  ): Promise<DeliveryAttempt | null> {
    const { delivery, webhook } = job;
    const now = attempt.createdAt;
    let disabled = false;
    const stored = await this.audit.transact(systemActor(delivery.tenantId), async (tx, record) => {
      const updated = await tx.nativeUpdate(
        DeliveryEntity,
        { id: delivery.id, attempts: attempt.attempt - 1 },
        {
          attempts: attempt.attempt,
          status: settlement.status,
          lastAttemptAt: now,
          lastStatusCode: attempt.statusCode,
          lastError: settlement.reason.slice(0, 1000),
          nextAttemptAt: settlement.status === 'RETRYING' ? settlement.nextAttemptAt : null,
          succeededAt: null,
          updatedAt: now,
        },
      );
      if (updated === 0) return null;
      const row = tx.create(DeliveryAttemptEntity, attempt);
      tx.create(AttemptOutboxEntity, { attemptId: row.id, createdAt: new Date() });
      if (!webhook) return row;
      // Plain conditional updates, no row lock held across the attempt's writes: lastFailureAt is
      // a status, written when the state changes or at most once a second.
      const aSecondAgo = new Date(now.getTime() - 1_000);
      await tx.execute(
        'update webhooks set last_failure_at = ?, failing_since = coalesce(failing_since, ?) where id = ? and (failing_since is null or last_failure_at is null or last_failure_at < ?)',
        [now, now, webhook.id, aSecondAgo],
      );
      const disable = settlement.disableWebhook;
      if (!disable) return row;
      // Only while it is still failing since then: a success recorded meanwhile keeps it on.
      const [off] = await tx.execute<DisabledRow[]>(
        `update webhooks set is_active = false, disabled_at = ?, disabled_reason = ?
         where id = ? and is_active ${disable.failingSince ? 'and failing_since <= ?' : ''}
         returning id, name, url, subscribed_events, external_id, managed_by, disabled_at, disabled_reason`,
        [now, disable.reason, webhook.id, ...(disable.failingSince ? [disable.failingSince] : [])],
      );
      if (off) {
        disabled = true;
        const after: AuditedWebhook = {
          id: off.id,
          name: off.name,
          url: off.url,
          subscribedEvents: off.subscribed_events,
          externalId: off.external_id,
          managedBy: off.managed_by,
          isActive: false,
          disabledAt: new Date(off.disabled_at),
          disabledReason: off.disabled_reason,
        };
        // It was active, so it had no disabledAt nor disabledReason.
        const before = { ...after, isActive: true, disabledAt: null, disabledReason: null };
        record(webhookEntry('webhook.disabled', before, after));
      }
      return row;
    });
    if (disabled) this.onWebhookDisabled(delivery.tenantId);
    return stored;
  }
}
