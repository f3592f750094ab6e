import { MikroORM } from '@mikro-orm/postgresql';

/** A plain connection to a test app's PostgreSQL database, for what tests do behind Herald's back. */
export async function sqlConnection(databaseUrl: string | undefined) {
  if (!databaseUrl) throw new Error('only production-mode apps have a PostgreSQL database');
  const orm = await MikroORM.init({
    clientUrl: databaseUrl,
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
