import { batchLoader } from '../../db/batch-loader.ts';
import type { Orm } from '../../db/orm.ts';
import { sqlRows } from '../../db/raw.ts';
import type { Event } from '../../events/event.entity.ts';
import type { FieldScope } from '../../apps/data-scopes.ts';
import type { Webhook } from '../../webhooks/webhook.entity.ts';
import type { Delivery } from '../delivery.entity.ts';
import { PIPELINE_BATCH } from './batching.ts';
import type { OpenedSecrets } from './opened-secrets.ts';

/** What a worker needs for one attempt. */
export interface AttemptJob {
  delivery: Pick<Delivery, 'id' | 'tenantId' | 'webhookId' | 'eventId' | 'status' | 'attempts' | 'updatedAt'>;
  webhook: Pick<Webhook, 'id' | 'url' | 'isActive' | 'disabledReason' | 'failingSince' | 'dataScopes'> | null;
  /** The fields of the event's payload that need a scope (the catalog's), for an app's webhook. */
  fieldScopes: FieldScope[];
  event: Pick<
    Event,
    'id' | 'tenantId' | 'type' | 'module' | 'model' | 'action' | 'current' | 'previous' | 'occurredAt'
  > | null;
  /** The live signing secrets: the current one, and the previous one during its grace period. */
  secrets: string[];
  /** The tenant is suspended: the delivery waits, paused, until it is resumed. */
  tenantSuspended: boolean;
}

interface JobRow {
  id: string;
  tenant_id: string;
  webhook_id: string;
  event_id: string;
  status: Delivery['status'];
  attempts: number;
  updated_at: Date | string;
  w_id: string | null;
  url: string | null;
  is_active: boolean | null;
  disabled_reason: string | null;
  failing_since: Date | string | null;
  data_scopes: string[] | null;
  field_scopes: FieldScope[] | null;
  secret: string | null;
  previous_secret: string | null;
  previous_secret_expires_at: Date | string | null;
  e_id: string | null;
  type: string | null;
  module: string | null;
  model: string | null;
  action: string | null;
  current: unknown;
  previous: unknown;
  occurred_at: Date | string | null;
  tenant_suspended: boolean;
}

/**
 * Attempt jobs: each delivery with its webhook, event and whether its tenant is suspended. Rows are looked up by a batch's ids one
 * index probe per id (see DISPATCH_SQL). Parameter: the deliveries' ids. Exported for the test of
 * its plan.
 */
export const LOAD_JOBS_SQL = `select d.id, d.tenant_id, d.webhook_id, d.event_id, d.status, d.attempts, d.updated_at,
     w.id as w_id, w.url, w.is_active, w.disabled_reason, w.failing_since, w.secret, w.previous_secret, w.previous_secret_expires_at,
     w.data_scopes, case when w.data_scopes is not null then et.field_scopes end as field_scopes,
     e.id as e_id, e.type, e.module, e.model, e.action, e.current, e.previous, e.occurred_at,
     t.suspended_at is not null as tenant_suspended
   from unnest($1::uuid[]) as x(id)
   cross join lateral (select * from deliveries where id = x.id offset 0) d
   left join webhooks w on w.id = d.webhook_id
   left join events e on e.id = d.event_id
   left join event_types et on et.name = e.type
   left join tenants t on t.id = d.tenant_id`;

const dateOrNull = (value: Date | string | null) => (value === null ? null : new Date(value));

/** Loads attempt jobs, the calls of a moment in one statement (across tenants: rows carry theirs). */
export class AttemptJobs {
  private readonly orm: Orm;
  private readonly secrets: OpenedSecrets;
  private readonly timeout: { timeoutMs: number };
  private readonly jobs = batchLoader<string, AttemptJob | null>(
    (ids) => this.loadBatch(ids),
    PIPELINE_BATCH,
  );

  constructor(deps: { orm: Orm; secrets: OpenedSecrets }, options: { statementTimeoutMs: number }) {
    this.orm = deps.orm;
    this.secrets = deps.secrets;
    this.timeout = { timeoutMs: options.statementTimeoutMs };
  }

  /** The delivery with its webhook (secrets opened) and event; null when the delivery is gone. */
  load(deliveryId: string): Promise<AttemptJob | null> {
    return this.jobs.load(deliveryId);
  }

  private async loadBatch(ids: readonly string[]): Promise<(AttemptJob | null | Error)[]> {
    const rows = await sqlRows<JobRow>(this.orm, LOAD_JOBS_SQL, [`{${ids.join(',')}}`], this.timeout);
    const byId = new Map(rows.map((row) => [row.id, row]));
    const now = new Date();
    // A row that cannot be turned into a job (a secret sealed under another key) fails its own
    // caller only.
    return ids.map((id) => {
      const row = byId.get(id);
      try {
        return row ? this.toJob(row, now) : null;
      } catch (error) {
        return error instanceof Error ? error : new Error(String(error));
      }
    });
  }

  private toJob(row: JobRow, now: Date): AttemptJob {
    return {
      delivery: {
        id: row.id,
        tenantId: row.tenant_id,
        webhookId: row.webhook_id,
        eventId: row.event_id,
        status: row.status,
        attempts: row.attempts,
        updatedAt: new Date(row.updated_at),
      },
      webhook: row.w_id
        ? {
            id: row.w_id,
            url: row.url!,
            isActive: row.is_active!,
            disabledReason: row.disabled_reason,
            failingSince: dateOrNull(row.failing_since),
            dataScopes: row.data_scopes,
          }
        : null,
      fieldScopes: row.field_scopes ?? [],
      event: row.e_id
        ? {
            id: row.e_id,
            tenantId: row.tenant_id,
            type: row.type!,
            module: row.module,
            model: row.model!,
            action: row.action!,
            current: row.current,
            previous: row.previous,
            occurredAt: new Date(row.occurred_at!),
          }
        : null,
      secrets: row.w_id
        ? this.secrets.live(
            {
              secret: row.secret!,
              previousSecret: row.previous_secret,
              previousSecretExpiresAt: dateOrNull(row.previous_secret_expires_at),
            },
            now,
          )
        : [],
      tenantSuspended: row.tenant_suspended === true,
    };
  }
}
