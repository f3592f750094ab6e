import { permits, type Action } from '../permissions.ts';
import type { Context } from './context.ts';

/** Each Node type and the action its lookups by id need (checked against the schema by a test). */
export const nodeActions = new Map<string, Action>();

/**
 * A Node type's loadMany, for `node(id)` and `nodes(ids)`: the same action as the type's own
 * query, or every id answers null, as another tenant's object does. Every Node type loads through
 * this, so none can be reached by id with less than its query needs.
 */
export function loadPermitted<T>(
  type: string,
  action: Action,
  load: (ids: string[], ctx: Context) => Promise<(T | null)[]>,
) {
  nodeActions.set(type, action);
  return (ids: string[], ctx: Context): Promise<(T | null)[]> =>
    permits(ctx.actor, action) ? load(ids, ctx) : Promise.resolve(ids.map(() => null));
}
