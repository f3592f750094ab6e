import { firstIdAt } from '../db/ids.ts';
import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';

const BATCH = 1_000;

/**
 * Prunes what is older than the retention age: settled deliveries not touched since (with their
 * attempts), events no delivery still needs, and inbound requests. A thousand rows per statement, so no lock is held
 * for long; a pass repeats until nothing is left to prune. Deliveries are found by their
 * time-ordered id (one not touched since was made before), attempts too: that spares both tables
 * an index on what every attempt writes.
 */
export async function pruneOnce(orm: Orm, retentionMs: number): Promise<number> {
  const before = new Date(Date.now() - retentionMs);
  const em = orm.em.fork();
  const statements: [sql: string, params: (Date | string)[]][] = [
    // Attempts go with their delivery (or once it is gone), never while it may still be retried.
    [
      `delete from delivery_attempts where id in (select a.id from delivery_attempts a
         left join deliveries d on d.id = a.delivery_id
         where a.id < ? and (d.id is null or (d.status in ('SUCCEEDED', 'FAILED') and d.updated_at < ?))
         limit ${BATCH})`,
      [firstIdAt(before), before],
    ],
    [
      `delete from deliveries where id in (select id from deliveries
         where id < ? and status in ('SUCCEEDED', 'FAILED') and updated_at < ? limit ${BATCH})`,
      [firstIdAt(before), before],
    ],
    [
      `delete from events where id in (select e.id from events e
         where e.created_at < ? and e.dispatched_at is not null
         and not exists (select 1 from deliveries d where d.event_id = e.id and d.status in ('PENDING', 'RETRYING', 'PAUSED'))
         limit ${BATCH})`,
      [before],
    ],
    // The inbound log, like the delivery log; an event made from a request lives on its own terms.
    [
      `delete from inbound_requests where id in (select id from inbound_requests where id < ? limit ${BATCH})`,
      [firstIdAt(before)],
    ],
  ];
  let pruned = 0;
  for (const [sql, params] of statements) {
    const result = await em.execute<{ affectedRows: number }>(sql, params, 'run');
    pruned += result.affectedRows;
  }
  return pruned;
}

export function startRetention(
  orm: Orm,
  options: { retentionMs: number; intervalMs: number },
  logger: Logger,
) {
  return pollLoop(
    () => pruneOnce(orm, options.retentionMs),
    { intervalMs: options.intervalMs, what: 'retention' },
    logger,
  );
}
