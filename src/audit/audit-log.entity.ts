import { defineEntity, p, type InferEntity } from '@mikro-orm/core';
import { tenantFilter } from '../db/tenant-filter.ts';

export interface Party {
  type: string;
  id: string | null;
  name: string | null;
}

/** The row trigger of an append-only audit table: UPDATE and DELETE refused, naming the table. */
export const appendOnly = (table: string) => ({
  name: 'append_only',
  timing: 'before' as const,
  events: ['update' as const, 'delete' as const],
  forEach: 'row' as const,
  body: `raise exception '${table} is append-only: % refused', tg_op using errcode = 'insufficient_privilege';`,
});

/**
 * One recorded change or privileged read. Append-only: a trigger refuses UPDATE and DELETE (and
 * one the migration adds by hand refuses TRUNCATE: introspection does not see statement triggers). Entries of a tenant form a hash chain: `hash` covers the canonical serialisation of
 * the entry including `previousHash`, so altering or removing a row breaks every later link.
 */
export const AuditLogEntity = defineEntity({
  name: 'AuditLog',
  tableName: 'audit_logs',
  filters: tenantFilter,
  properties: {
    id: p.uuid().primary(),
    tenantId: p.uuid(),
    sequence: p.bigint('number'),
    action: p.string().length(100),
    executor: p.json<Party>(),
    related: p.json<Party>().nullable(),
    relationName: p.string().length(100).nullable(),
    relationId: p.string().length(255).nullable(),
    metadata: p.json<Record<string, unknown>>(),
    ip: p.string().length(64).nullable(),
    userAgent: p.string().length(512).nullable(),
    requestId: p.string().length(64).nullable(),
    createdAt: p.datetime(),
    previousHash: p.string().length(64),
    hash: p.string().length(64),
  },
  uniques: [{ properties: ['tenantId', 'sequence'], name: 'audit_logs_tenant_sequence_unique' }],
  triggers: [appendOnly('audit_logs')],
  indexes: [
    { properties: ['tenantId', 'createdAt', 'id'], name: 'audit_logs_tenant_created_at_id_index' },
    { properties: ['tenantId', 'action', 'createdAt', 'id'], name: 'audit_logs_tenant_action_index' },
    {
      name: 'audit_logs_tenant_relation_index',
      properties: ['tenantId', 'relationName', 'relationId', 'createdAt', 'id'],
    },
    {
      name: 'audit_logs_tenant_executor_index',
      expression:
        'create index "audit_logs_tenant_executor_index" on "audit_logs" ("tenant_id", (executor->>\'id\'), "created_at", "id")',
    },
  ],
});
export type AuditLog = InferEntity<typeof AuditLogEntity>;

/** The newest link of each tenant's chain; writers lock it, so a chain has one writer at a time. */
export const AuditChainHeadEntity = defineEntity({
  name: 'AuditChainHead',
  tableName: 'audit_chain_heads',
  properties: {
    tenantId: p.uuid().primary(),
    sequence: p.bigint('number'),
    hash: p.string().length(64),
  },
});

/** Entries committed but not yet on the bus (audit rows themselves cannot be updated). */
export const AuditOutboxEntity = defineEntity({
  name: 'AuditOutbox',
  tableName: 'audit_outbox',
  properties: {
    auditLogId: p.uuid().primary(),
    tenantId: p.uuid(),
    createdAt: p.datetime().onCreate(() => new Date()),
  },
  indexes: [{ properties: ['createdAt'] }],
});
