import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AuditExportItem, AuditService } from '../audit/audit.service.ts';
import type { Logger } from '../logger.ts';
import { storableDate } from '../input.ts';
import { permits, requirement } from '../permissions.ts';
import type { Actor } from '../tenancy/actor.ts';
import type { TokenSessions } from '../tenancy/token-sessions.ts';

/**
 * GET /audit/export?from=&to= — the caller's audit log as NDJSON, one entry a line in sequence
 * order, for a SIEM; each keyed checkpoint follows the entry it covers as a line of its own,
 * `{"type":"checkpoint",…}` (entry lines keep their shape, and have no `type`). Streamed in
 * batches with backpressure: memory stays flat at any size. The export itself is recorded before
 * anything leaves (`audit_log.export_started`) and once over, as `audit_log.exported` with the
 * entries and checkpoints it sent, or as `audit_log.export_failed` with those sent before it failed.
 * Revoking its token or suspending its tenant cuts it off, as it closes a socket.
 */
export async function auditExport(
  req: IncomingMessage,
  res: ServerResponse,
  deps: {
    audit: AuditService;
    authenticate: (authorization: unknown, req: IncomingMessage) => Promise<Actor | null>;
    /** Ends the export when its token is revoked or its tenant suspended, as it does a socket. */
    sessions: Pick<TokenSessions, 'track'>;
    logger: Logger;
  },
): Promise<void> {
  const fail = (status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: message }));
  };
  if (req.method !== 'GET') return fail(405, 'use GET');
  const actor = await deps.authenticate(req.headers.authorization, req);
  if (!actor) return fail(401, 'missing or invalid bearer token');
  if (!permits(actor, 'audit.read')) return fail(403, requirement('audit.read'));

  const query = new URL(req.url ?? '/', 'http://herald').searchParams;
  const range: { from?: Date; to?: Date } = {};
  for (const key of ['from', 'to'] as const) {
    const value = query.get(key);
    if (value === null) continue;
    const date = new Date(value);
    if (!/^\d{4}-\d{2}-\d{2}/.test(value) || !storableDate(date)) {
      return fail(400, `${key} must be an ISO-8601 date-time in the years 1 to 9999 (UTC)`);
    }
    range[key] = date;
  }

  // Recorded before anything leaves, and again once it is over, with what it sent: an export is
  // never unrecorded, and one that failed is not recorded as done.
  const asked = { from: range.from?.toISOString() ?? null, to: range.to?.toISOString() ?? null };
  const record = (action: string, metadata: Record<string, unknown> = {}) =>
    deps.audit.transact(actor, async (_tx, recorder) => {
      recorder({ action, metadata: { ...asked, ...metadata } });
    });
  await record('audit_log.export_started');
  const sent = { entries: 0, checkpoints: 0 };
  res.writeHead(200, { 'content-type': 'application/x-ndjson' });
  const lines = async function* (items: AsyncIterable<AuditExportItem>) {
    for await (const item of items) {
      if (item.kind === 'entry') {
        yield `${JSON.stringify(item.entry)}\n`;
        sent.entries++;
      } else {
        const { tenantId, sequence, hash, previousMac, mac, createdAt } = item.checkpoint;
        const line = { type: 'checkpoint', tenantId, sequence, hash, previousMac, mac, createdAt };
        yield `${JSON.stringify(line)}\n`;
        sent.checkpoints++;
      }
    }
  };
  // pipeline keeps backpressure (a slow reader slows the queries) and, when the client goes away,
  // ends the generator and with it the batched reads.
  const untrack = deps.sessions.track(actor, (reason) => res.destroy(new Error(reason)));
  try {
    await pipeline(Readable.from(lines(deps.audit.stream(actor, range))), res);
  } catch (error) {
    if (!res.destroyed) deps.logger.error({ err: error }, 'audit export failed mid-stream');
    await record('audit_log.export_failed', sent);
    return;
  } finally {
    untrack();
  }
  await record('audit_log.exported', sent);
}
