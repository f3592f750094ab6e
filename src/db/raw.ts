import { CompiledQuery } from 'kysely';
import type { Orm } from './orm.ts';

/**
 * One statement with bound parameters ($1, $2…), sent as written. For the delivery hot path's
 * batches, whose parameters are large JSON documents: the ORM would inline and escape them.
 */
export async function sqlRows<Row>(orm: Orm, sql: string, params: readonly unknown[]): Promise<Row[]> {
  const result = await orm.em
    .getConnection()
    .getClient()
    .executeQuery(CompiledQuery.raw(sql, [...params]));
  return result.rows as Row[];
}
