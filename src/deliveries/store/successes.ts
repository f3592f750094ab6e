import { batchLoader } from '../../db/batch-loader.ts';
import type { Orm } from '../../db/orm.ts';
import { sqlRows } from '../../db/raw.ts';
import type { DeliveryAttempt } from '../delivery.entity.ts';
import { PIPELINE_BATCH } from './batching.ts';

/** Records successful attempts, the calls of a moment in one statement (across tenants). */
export class SuccessRecords {
  private readonly orm: Orm;
  private readonly timeout: { timeoutMs: number };
  private readonly successes = batchLoader<DeliveryAttempt, DeliveryAttempt | null>(
    (attempts) => this.recordSuccesses(attempts),
    PIPELINE_BATCH,
  );

  constructor(deps: { orm: Orm }, options: { statementTimeoutMs: number }) {
    this.orm = deps.orm;
    this.timeout = { timeoutMs: options.statementTimeoutMs };
  }

  /**
   * Stores a successful attempt and settles its delivery; returns the attempt as stored, or null
   * when it was recorded already (a repeated message raced this one).
   */
  record(attempt: DeliveryAttempt): Promise<DeliveryAttempt | null> {
    return this.successes.load(attempt);
  }

  /**
   * Successful attempts of a batch in one statement: each delivery settled (only from the attempt
   * before, so a repeat records nothing), its attempt row with its outbox entry (announced after
   * the commit, attempt-outbox.ts), and each webhook's lastSuccessAt, written
   * when the state changes or at most once a second. The webhooks are locked in id order, so two
   * workers' batches sharing webhooks wait for each other instead of deadlocking.
   */
  private async recordSuccesses(attempts: readonly DeliveryAttempt[]): Promise<(DeliveryAttempt | null)[]> {
    // Two repeats of one attempt in a batch: the first is recorded, the other is a repeat.
    const first = new Map<string, DeliveryAttempt>();
    for (const a of attempts) if (!first.has(a.deliveryId)) first.set(a.deliveryId, a);
    const inserted = await sqlRows<{ id: string }>(
      this.orm,
      `with x as (
         select * from jsonb_to_recordset($1::jsonb) as x(id uuid, tenant_id uuid, delivery_id uuid, webhook_id uuid, attempt int, url varchar, status_code int, response_time_ms int, response text, created_at timestamptz)
       ), settled as (
         update deliveries d set attempts = x.attempt, status = 'SUCCEEDED', last_attempt_at = x.created_at,
           last_status_code = x.status_code, last_error = null, next_attempt_at = null,
           succeeded_at = x.created_at, updated_at = x.created_at
         from x where d.id = x.delivery_id and d.attempts = x.attempt - 1
         returning d.id
       ), attempts as (
         insert into delivery_attempts (id, tenant_id, delivery_id, webhook_id, attempt, status, url, status_code, response_time_ms, response, error_class, error, created_at)
         select x.id, x.tenant_id, x.delivery_id, x.webhook_id, x.attempt, 'SUCCEEDED', x.url, x.status_code, x.response_time_ms, x.response, null, null, x.created_at
         from x join settled on settled.id = x.delivery_id
         returning id
       ), announced as (
         insert into attempt_outbox (attempt_id, created_at) select id, $2::timestamptz from attempts
       ), due as (
         select w.id, s.at from webhooks w
         join (select webhook_id, max(created_at) as at from x group by webhook_id) s on s.webhook_id = w.id
         where w.failing_since is not null or w.last_success_at is null or w.last_success_at < s.at - interval '1 second'
         order by w.id
         for update of w
       ), succeeded as (
         update webhooks w set last_success_at = due.at, failing_since = null from due where w.id = due.id
       )
       select id from attempts`,
      [
        JSON.stringify(
          [...first.values()].map((a) => ({
            id: a.id,
            tenant_id: a.tenantId,
            delivery_id: a.deliveryId,
            webhook_id: a.webhookId,
            attempt: a.attempt,
            url: a.url,
            status_code: a.statusCode,
            response_time_ms: a.responseTimeMs,
            response: a.response,
            created_at: a.createdAt,
          })),
        ),
        new Date(),
      ],
      this.timeout,
    );
    const stored = new Set(inserted.map((row) => row.id));
    return attempts.map((a) => (stored.has(a.id) ? a : null));
  }
}
