import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { MikroORM } from '@mikro-orm/core';
import { Migrator } from '@mikro-orm/migrations';
import { MikroORM as PgliteORM } from '@mikro-orm/pglite';
import { MikroORM as PostgresORM } from '@mikro-orm/postgresql';
import type { AbstractSqlDriver, SqlEntityManager } from '@mikro-orm/sql';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import { entities } from './entities.ts';

export type Orm = MikroORM<AbstractSqlDriver, SqlEntityManager<AbstractSqlDriver>>;
export type EntityManager = SqlEntityManager<AbstractSqlDriver>;

export const migrationsDir = fileURLToPath(new URL('../../migrations', import.meta.url));

const shared = {
  entities,
  extensions: [Migrator],
  debug: false,
  migrations: {
    path: migrationsDir,
    pathTs: migrationsDir,
    glob: '!(*.d).{js,ts}',
    emit: 'ts' as const,
    // Diff against the live schema, not a snapshot file: the database is the truth.
    snapshot: false,
    silent: true,
  },
};

/** PostgreSQL when database.url is set, else PGlite under dataDir (embedded mode, one process). */
export async function openOrm(config: Config, logger: Logger): Promise<Orm> {
  const { url, poolMax } = config.database;
  let orm: Orm;
  if (url) {
    orm = await PostgresORM.init({ ...shared, clientUrl: url, pool: { max: poolMax } });
  } else {
    const dir = resolve(join(config.dataDir, 'pg'));
    mkdirSync(config.dataDir, { recursive: true });
    logger.warn({ dir }, 'embedded PostgreSQL (PGlite): single process only; set DATABASE_URL in production');
    orm = await PgliteORM.init({ ...shared, dbName: dir });
  }
  await orm.connect();
  return orm;
}

/**
 * Applies pending migrations. Two processes starting together may race; the loser's error is
 * harmless when the winner left nothing pending.
 */
export async function migrate(orm: Orm, logger: Logger): Promise<void> {
  try {
    const applied = await orm.migrator.up();
    if (applied.length > 0) logger.info({ migrations: applied.map((m) => m.name) }, 'migrations applied');
  } catch (error) {
    const pending = await orm.migrator.getPending().catch(() => undefined);
    if (pending === undefined || pending.length > 0) throw error;
  }
}
