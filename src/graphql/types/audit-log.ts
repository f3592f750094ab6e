import type { AuditLog, Party } from '../../audit/audit-log.entity.ts';
import type { AuditTrailVerification } from '../../audit/audit.service.ts';
import type { Streamed } from '../../live/cursor.ts';
import { builder } from '../builder.ts';
import { loadPermitted } from '../nodes.ts';
import { liveAfterArg, liveItem, streamCursorField } from '../live.ts';
import { firstArg, pageRequest, toConnection } from '../pagination.ts';

const readsAudit = { can: 'audit.read' } as const;

const AuditPartyRef = builder.objectRef<Party>('AuditParty').implement({
  description: 'Who did it (executor) or whom it concerned (related).',
  fields: (t) => ({
    type: t.exposeString('type', { description: 'token, operator or system; for related, the object type.' }),
    id: t.exposeString('id', { nullable: true }),
    name: t.exposeString('name', { nullable: true }),
  }),
});

export const AuditLogRef = builder.objectRef<AuditLog & Streamed>('AuditLog');
builder.node(AuditLogRef, {
  description: 'One recorded change, in a per-tenant hash chain.',
  id: { resolve: (entry) => entry.id },
  isTypeOf: (value) => typeof value === 'object' && value !== null && 'previousHash' in value,
  loadMany: loadPermitted('AuditLog', 'audit.read', (ids, ctx) =>
    Promise.all(ids.map((id) => ctx.services.audit.find(ctx.actor, id))),
  ),
  fields: (t) => ({
    action: t.exposeString('action', { description: 'e.g. api_token.created, webhook.updated' }),
    executor: t.field({ type: AuditPartyRef, resolve: (entry) => entry.executor }),
    related: t.field({ type: AuditPartyRef, nullable: true, resolve: (entry) => entry.related ?? null }),
    relationName: t.exposeString('relationName', {
      nullable: true,
      description: 'Type of the changed object.',
    }),
    relationId: t.exposeString('relationId', { nullable: true, description: 'Id of the changed object.' }),
    metadata: t.expose('metadata', {
      type: 'JSON',
      description: '{ changes: { field: { before, after } } }; secrets are redacted.',
    }),
    ip: t.exposeString('ip', { nullable: true }),
    userAgent: t.exposeString('userAgent', { nullable: true }),
    requestId: t.exposeString('requestId', { nullable: true }),
    sequence: t.exposeInt('sequence', { description: 'Position in the tenant chain, from 1.' }),
    previousHash: t.exposeString('previousHash'),
    hash: t.exposeString('hash', { description: 'SHA-256 of the canonical entry, previousHash included.' }),
    createdAt: t.expose('createdAt', { type: 'DateTime' }),
    streamCursor: t.string({ ...streamCursorField, resolve: (entry) => entry.streamCursor ?? null }),
  }),
});

const AuditLogConnection = builder.connectionObject({ type: AuditLogRef, name: 'AuditLogConnection' });

const AuditLogFilter = builder.inputType('AuditLogFilter', {
  fields: (t) => ({
    actions: t.stringList({ description: 'Any of these actions.' }),
    executorId: t.string({ description: 'Entries made by this token (its id).' }),
    relationName: t.string(),
    relationId: t.string({ description: 'Needs relationName.' }),
    from: t.field({ type: 'DateTime', description: 'Inclusive.' }),
    to: t.field({ type: 'DateTime', description: 'Exclusive.' }),
  }),
});

const AuditTrailVerificationRef = builder
  .objectRef<AuditTrailVerification>('AuditTrailVerification')
  .implement({
    fields: (t) => ({
      ok: t.exposeBoolean('ok'),
      checked: t.exposeInt('checked', { description: 'Entries verified, from sequence 1.' }),
      firstBrokenSequence: t.exposeInt('firstBrokenSequence', { nullable: true }),
      reason: t.exposeString('reason', { nullable: true }),
      checkpointsChecked: t.exposeInt('checkpointsChecked', {
        description: 'Keyed checkpoints verified: each matched its entry, its key and the checkpoint before.',
      }),
      lastCheckpointSequence: t.exposeInt('lastCheckpointSequence', {
        nullable: true,
        description:
          'The newest checkpoint verified: entries up to it cannot be rewritten without the checkpoint key, unless newer checkpoints were deleted (see anchorSequence). Null before the first.',
      }),
      anchorSequence: t.exposeInt('anchorSequence', {
        nullable: true,
        description:
          "The newest checkpoint as the bus keeps it (out of the database owner's reach), found unchanged in the database. Null when the bus holds none for the tenant or did not answer: then checkpoints deleted from the end go unseen.",
      }),
    }),
  });

builder.queryFields((t) => ({
  auditLogs: t.field({
    type: AuditLogConnection,
    description: "The tenant's audit log, newest first.",
    authScopes: readsAudit,
    args: {
      first: t.arg.int({ validate: firstArg }),
      after: t.arg.string(),
      filter: t.arg({ type: AuditLogFilter }),
    },
    resolve: async (_root, args, ctx) =>
      toConnection(await ctx.services.audit.list(ctx.actor, args.filter ?? {}, pageRequest(args))),
  }),
  auditLog: t.field({
    type: AuditLogRef,
    nullable: true,
    authScopes: readsAudit,
    args: { id: t.arg.globalID({ required: true, for: AuditLogRef }) },
    resolve: (_root, { id }, ctx) => ctx.services.audit.find(ctx.actor, id.id),
  }),
  verifyAuditTrail: t.field({
    type: AuditTrailVerificationRef,
    description:
      "Recomputes the tenant's hash chain, checks its keyed checkpoints, and reports the first broken link.",
    authScopes: readsAudit,
    resolve: (_root, _args, ctx) => ctx.services.audit.verify(ctx.actor),
  }),
}));

builder.subscriptionFields((t) => ({
  auditLogAdded: t.field({
    type: AuditLogRef,
    description: "The caller's tenant's audit entries as they are committed.",
    authScopes: { can: 'audit.read' },
    args: { after: t.arg.string(liveAfterArg) },
    subscribe: (_root, args, ctx) => ctx.services.live.audit(ctx.actor, args),
    resolve: (entry) => liveItem(entry),
  }),
}));
