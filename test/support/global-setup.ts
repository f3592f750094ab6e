import { randomBytes } from 'node:crypto';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { MikroORM } from '@mikro-orm/postgresql';
import type { TestProject } from 'vitest/node';
import { loadConfig } from '../../src/config.ts';
import { migrate, openOrm } from '../../src/db/orm.ts';
import { createLogger } from '../../src/logger.ts';
import { testServices, unavailable } from './services.ts';

/**
 * Where the test run finds PostgreSQL and NATS (TEST_DATABASE_URL, TEST_NATS_URL; local ones by
 * default); the run makes its own database and prefix in them.
 */
export const services = testServices();

declare module 'vitest' {
  export interface ProvidedContext {
    databaseUrl: string;
    natsUrl: string;
    natsPrefix: string;
    /** Every app of the run shares the database, so it shares the key that seals webhook secrets. */
    secretKey: string;
  }
}

async function adminOrm() {
  return MikroORM.init({
    clientUrl: `${services.postgres}/postgres`,
    entities: [],
    discovery: { warnWhenNoEntities: false },
    ensureDatabase: false,
  });
}

export default async function setup(project: TestProject) {
  // Stop at once, saying how to get them, rather than deep inside a suite.
  const missing = await unavailable(services);
  if (missing) throw new Error(missing);
  const run = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
  const database = `herald_test_${run}`;
  const natsPrefix = `t${run}`;
  const databaseUrl = `${services.postgres}/${database}`;

  const admin = await adminOrm();
  await admin.em.fork().execute('create database ??', [database]);
  const config = loadConfig({ DATABASE_URL: databaseUrl, NATS_URL: services.nats, LOG_LEVEL: 'silent' });
  const orm = await openOrm(config, createLogger('silent'));
  await migrate(orm, createLogger('silent'));
  await orm.close();

  project.provide('databaseUrl', databaseUrl);
  project.provide('natsUrl', services.nats);
  project.provide('natsPrefix', natsPrefix);
  project.provide('secretKey', randomBytes(32).toString('base64'));

  return async () => {
    // Suites may make databases of their own, named after the run's.
    const databases = await admin.em
      .fork()
      .execute<{ datname: string }[]>('select datname from pg_database where datname like ?', [
        `${database}%`,
      ]);
    for (const { datname } of databases) {
      await admin.em.fork().execute('drop database if exists ?? with (force)', [datname]);
    }
    await admin.close();
    const nc = await connect({ servers: services.nats });
    const jsm = await jetstreamManager(nc);
    for await (const name of jsm.streams.names()) {
      if (name.startsWith(natsPrefix.toUpperCase())) await jsm.streams.delete(name);
    }
    await nc.close();
  };
}
