import type { AuditEntryInput } from '../audit/audit.service.ts';
import { changes } from '../audit/changes.ts';
import type { Webhook } from './webhook.entity.ts';

/** The fields a webhook's audit entries record the changes of. */
const AUDITED = [
  'name',
  'url',
  'isActive',
  'subscribedEvents',
  'externalId',
  'managedBy',
  'disabledAt',
  'disabledReason',
] as const;

export type AuditedWebhook = Pick<Webhook, 'id' | (typeof AUDITED)[number]>;

/** A URL as the audit log keeps it: origin and path, without credentials, query or fragment. */
export const withoutSecrets = (value: string): string => {
  const url = new URL(value);
  return `${url.origin}${url.pathname}`;
};

const redactUrl = (value: unknown): unknown => (typeof value === 'string' ? withoutSecrets(value) : value);

/** Whether a change touches anything the audit log records. */
export const changesAudited = (before: AuditedWebhook, after: AuditedWebhook): boolean =>
  Object.keys(changes(before, after, AUDITED)).length > 0;

/**
 * The audit entry of a change to a webhook, whoever made it (a token, the operator, Herald
 * disabling a failing endpoint): the changed fields before and after, the URL without its query.
 * `before` null for a creation, `after` null for a deletion.
 */
export function webhookEntry(
  action: string,
  before: AuditedWebhook | null,
  after: AuditedWebhook | null,
): AuditEntryInput {
  const subject = (after ?? before)!;
  const changed = changes(before, after, AUDITED);
  // URLs often carry credentials in their query: the audit log keeps origin and path only.
  if (changed.url)
    changed.url = { before: redactUrl(changed.url.before), after: redactUrl(changed.url.after) };
  return {
    action,
    relationName: 'Webhook',
    relationId: subject.id,
    related: { type: 'Webhook', id: subject.id, name: subject.name ?? String(redactUrl(subject.url)) },
    metadata: { changes: changed },
  };
}
