import { PostgreSqlConnection } from '@mikro-orm/postgresql';
import { CompiledQuery } from 'kysely';
import type { Orm } from './orm.ts';

/**
 * A statement cancelled after running past its time (waiting for a connection included). Its code
 * is the one PostgreSQL gives a cancelled statement (query_canceled): the database did not answer
 * in time, and the work is tried again later. The cancel may come too late to stop a statement
 * that was committing: callers may see this for work that was done, as for any lost answer, so
 * retried work must be idempotent (deliveries are; events are by idempotency key).
 */
export class StatementTimeoutError extends Error {
  readonly code = '57014';
}

/**
 * One statement with bound parameters ($1, $2…), sent as written. For the hot paths' batches,
 * whose parameters are large JSON documents: the ORM would inline and escape them. With
 * `timeoutMs`, PostgreSQL is told to cancel a statement that runs longer: one stuck statement
 * (a lock never released) would otherwise hold back every later batch of its kind. (Embedded
 * PGlite runs one statement at a time in-process and cannot cancel one: there it is not timed.)
 */
export async function sqlRows<Row>(
  orm: Orm,
  sql: string,
  params: readonly unknown[],
  options: { timeoutMs?: number } = {},
): Promise<Row[]> {
  const { timeoutMs } = options;
  const connection = orm.em.getConnection();
  const signal =
    timeoutMs && connection instanceof PostgreSqlConnection ? AbortSignal.timeout(timeoutMs) : undefined;
  try {
    const result = await connection
      .getClient()
      .executeQuery(
        CompiledQuery.raw(sql, [...params]),
        signal ? { signal, inflightQueryAbortStrategy: 'cancel query' } : undefined,
      );
    return result.rows as Row[];
  } catch (error) {
    if (signal?.aborted) {
      throw new StatementTimeoutError(
        `the database did not answer within ${timeoutMs} ms; the statement was cancelled`,
        {
          cause: error,
        },
      );
    }
    throw error;
  }
}
