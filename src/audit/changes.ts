/** Fields whose values never reach the audit log. */
const SECRET = /secret|token|password|key$/i;
export const REDACTED = '[redacted]';

export type Change = { before: unknown; after: unknown };

const plain = (value: unknown): unknown => (value instanceof Date ? value.toISOString() : (value ?? null));

/**
 * `{ field: { before, after } }` for each listed field whose value differs, with secret-looking
 * fields redacted. `before` null for a creation, `after` null for a deletion.
 */
export function changes<T extends object>(
  before: T | null,
  after: T | null,
  fields: readonly (keyof T & string)[],
): Record<string, Change> {
  const result: Record<string, Change> = {};
  for (const field of fields) {
    const b = plain(before?.[field]);
    const a = plain(after?.[field]);
    if (JSON.stringify(b) === JSON.stringify(a)) continue;
    result[field] = SECRET.test(field)
      ? { before: b === null ? null : REDACTED, after: a === null ? null : REDACTED }
      : { before: b, after: a };
  }
  return result;
}
