import { MikroORM } from '@mikro-orm/postgresql';
import { inject } from 'vitest';

/** A plain connection to the run's PostgreSQL database, for what tests do behind Herald's back. */
export async function sqlConnection() {
  const orm = await MikroORM.init({
    clientUrl: inject('databaseUrl'),
    entities: [],
    discovery: { warnWhenNoEntities: false },
    ensureDatabase: false,
  });
  return {
    query: <T = Record<string, unknown>>(sql: string, params: unknown[] = []) =>
      orm.em.fork().execute<T[]>(sql, params),
    close: () => orm.close(),
  };
}
