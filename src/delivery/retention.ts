import type { Orm } from '../db/orm.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';

const BATCH = 1_000;

/**
 * Prunes what is older than the retention age: delivery attempts, settled deliveries and the
 * events (payloads) behind them. A thousand rows per statement, so no lock is held for long; a
 * pass repeats until nothing is left to prune.
 */
export async function pruneOnce(orm: Orm, retentionMs: number): Promise<number> {
  const before = new Date(Date.now() - retentionMs);
  const em = orm.em.fork();
  const statements = [
    `delete from delivery_attempts where id in (select id from delivery_attempts where created_at < ? limit ${BATCH})`,
    `delete from deliveries where id in (select id from deliveries where created_at < ? and status in ('SUCCEEDED', 'FAILED') limit ${BATCH})`,
    `delete from events where id in (select id from events where created_at < ? and dispatched_at is not null limit ${BATCH})`,
  ];
  let pruned = 0;
  for (const sql of statements) {
    const result = await em.execute<{ affectedRows: number }>(sql, [before], 'run');
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
