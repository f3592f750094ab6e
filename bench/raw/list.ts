/**
 * The raw baseline of S6 (list queries): a node:http handler that checks the bearer token against
 * the one it was given, runs the SQL Herald runs for a page (read from MikroORM's debug log: the
 * tenant's rows, newest first, one more than the page to tell whether more follow) on a pg pool of
 * Herald's default size, and answers the rows with JSON.stringify.
 *
 * What it does not do: look the token up in PostgreSQL, parse, validate and execute GraphQL, check
 * scopes, map rows to entities, encode cursors, shape a connection.
 *
 * Runs as its own process: node bench/raw/list.ts <databaseUrl> <tenantId> <token>
 */
import pg from 'pg';
import { serve } from './serve.ts';

const [databaseUrl, tenantId, token] = process.argv.slice(2) as [string, string, string];
const pool = new pg.Pool({ connectionString: databaseUrl, max: 20 });

const sql: Record<string, string> = {
  '/webhooks':
    'select "w0"."id", "w0"."tenant_id", "w0"."name", "w0"."url", "w0"."is_active", "w0"."subscribed_events", "w0"."external_id", "w0"."managed_by", "w0"."last_success_at", "w0"."last_failure_at", "w0"."disabled_at", "w0"."disabled_reason", "w0"."failing_since", "w0"."previous_secret_expires_at", "w0"."created_at", "w0"."updated_at" from "webhooks" as "w0" where "w0"."tenant_id" = $1 order by "w0"."created_at" desc, "w0"."id" desc limit $2',
  '/audit-logs':
    'select "a0".* from "audit_logs" as "a0" where "a0"."tenant_id" = $1 order by "a0"."created_at" desc, "a0"."id" desc limit $2',
};
const PAGE = 50;

serve(token, async ({ path }) => {
  const query = sql[path];
  if (!query) throw new Error(`no list at ${path}`);
  const { rows } = await pool.query(query, [tenantId, PAGE + 1]);
  return { items: rows.slice(0, PAGE), hasNextPage: rows.length > PAGE };
});
