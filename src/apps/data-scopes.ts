import { z } from 'zod';

/**
 * What an app may see of a tenant's data (Flowlu's permission scopes). `<module>.<model>:read`
 * (`<model>:read` for a type without a module) covers the events of that module and model;
 * `<module>.*:read` every model of the module. A catalog type may name fields of its payload that
 * need a further scope (e.g. `email` needing `crm.contact.pii:read`): only a holder sees them.
 */

export const dataScope = z
  .string()
  .max(200)
  .regex(
    /^[a-z][a-z0-9_]*(?:\.(?:[a-z][a-z0-9_]*|\*))*:read$/,
    'must be <module>.<model>:read, <module>.*:read or a field scope such as crm.contact.pii:read',
  );

/** A field of `current` and `previous` that only holders of `scope` see; `path` may cross arrays. */
export interface FieldScope {
  path: string;
  scope: string;
}

export const fieldScopes = z
  .array(
    z.object({
      path: z
        .string()
        .max(255)
        .regex(
          /^[^.\p{Cc}]+(?:\.[^.\p{Cc}]+)*$/u,
          'must be keys separated by dots, e.g. email or address.street',
        ),
      scope: dataScope,
    }),
  )
  .max(100);

/** The scope that covers events of a module and model. */
export const scopeFor = (meta: { module: string | null; model: string }): string =>
  `${meta.module ? `${meta.module}.` : ''}${meta.model}:read`;

/** Whether the scopes cover events of the module and model. */
export function covers(scopes: ReadonlySet<string>, meta: { module: string | null; model: string }): boolean {
  return scopes.has(scopeFor(meta)) || (meta.module !== null && scopes.has(`${meta.module}.*:read`));
}

/**
 * A payload as the holder of `scopes` may see it: the fields whose scope it lacks removed, at any
 * depth (through arrays too). The value given is not changed.
 */
export function visible(value: unknown, rules: readonly FieldScope[], scopes: ReadonlySet<string>): unknown {
  const hidden = rules.filter((rule) => !scopes.has(rule.scope)).map((rule) => rule.path.split('.'));
  return hidden.length === 0 ? value : without(value, hidden);
}

function without(value: unknown, paths: readonly string[][]): unknown {
  if (Array.isArray(value)) return value.map((item) => without(item, paths));
  if (value === null || typeof value !== 'object') return value;
  const copy: Record<string, unknown> = {};
  for (const [key, child] of Object.entries(value)) {
    if (paths.some((path) => path.length === 1 && path[0] === key)) continue;
    const deeper = paths.filter((path) => path.length > 1 && path[0] === key).map((path) => path.slice(1));
    // Defined as an own property: a key named __proto__ stays data.
    Object.defineProperty(copy, key, {
      value: deeper.length > 0 ? without(child, deeper) : child,
      enumerable: true,
      writable: true,
      configurable: true,
    });
  }
  return copy;
}

/**
 * An event's payload for a reader limited to `scopes` (an app): both sides null when the scopes
 * do not cover its module and model, else without the fields they may not see.
 */
export function scopedPayload(
  event: { module: string | null; model: string; current: unknown; previous: unknown },
  rules: readonly FieldScope[],
  scopes: ReadonlySet<string>,
): { current: unknown; previous: unknown } {
  if (!covers(scopes, event)) return { current: null, previous: null };
  return { current: visible(event.current, rules, scopes), previous: visible(event.previous, rules, scopes) };
}
