import { MikroORM as PgliteORM } from '@mikro-orm/pglite';
import { Migrator } from '@mikro-orm/migrations';
import { startApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { parseTenantCommand, runTenantCommand, type TenantCommand } from '../tenancy/tenant-cli.ts';
import { entities } from '../db/entities.ts';
import { migrate, migrationsDir, openOrm, type Orm } from '../db/orm.ts';
import { createLogger } from '../logger.ts';
import { runMain } from './run-main.ts';

const usage = `usage: npm run cli -- <command>
  migrate                   apply pending migrations to the configured database
  migration:create <name>   generate a migration from the difference between the entities and the migrations
  migration:check           fail when the entities differ from what the migrations build
  tenants create <name> [--max-webhooks N] [--requests-per-second N]
                            create a tenant; prints it and its first token (shown once)
  tenants list [--suspended | --active]
                            every tenant, newest first, one JSON line each
  tenants get <id>          one tenant
  tenants suspend <id> --reason <text>
                            refuse the tenant's tokens and pause its deliveries
  tenants resume <id>       undo a suspension; paused deliveries go out
  tenants token <id> --scopes <a,b,…> [--name <text>] [--client <kind>] [--expires-at <ISO date>]
                            issue a token for the tenant; prints it (shown once)`;

/** A throwaway in-memory database with every migration applied: what the migrations build. */
async function migratedScratchDatabase(): Promise<Orm> {
  const orm = (await PgliteORM.init({
    entities,
    extensions: [Migrator],
    migrations: {
      path: migrationsDir,
      pathTs: migrationsDir,
      glob: '!(*.d).{js,ts}',
      emit: 'ts',
      snapshot: false,
      silent: true,
    },
  })) as unknown as Orm;
  await orm.migrator.up();
  return orm;
}

async function main(args: string[]): Promise<number> {
  const [command, name] = args;
  const config = loadConfig();
  const logger = createLogger(command === 'tenants' ? 'warn' : config.logLevel, { toStderr: true });
  switch (command) {
    case 'migrate': {
      const orm = await openOrm(config, logger);
      await migrate(orm, logger);
      await orm.close();
      return 0;
    }
    case 'migration:create': {
      if (!name || !/^[a-z0-9-]+$/.test(name)) {
        console.error('migration:create needs a kebab-case name');
        return 2;
      }
      const orm = await migratedScratchDatabase();
      const result = await orm.migrator.create(undefined, false, false, name);
      await orm.close();
      console.log(
        result.fileName ? `created migrations/${result.fileName}` : 'no changes: nothing to create',
      );
      return 0;
    }
    case 'migration:check': {
      const orm = await migratedScratchDatabase();
      const sql = await orm.schema.getUpdateSchemaSQL({ wrap: false });
      await orm.close();
      if (sql.trim() === '') return 0;
      console.error(
        `the entities differ from the migrations; run npm run migration:create -- <name>:\n${sql}`,
      );
      return 1;
    }
    case 'tenants': {
      let parsed: TenantCommand;
      try {
        parsed = parseTenantCommand(args.slice(1));
      } catch (error) {
        console.error(`${(error as Error).message}\n${usage}`);
        return 2;
      }
      const app = await startApp(config, { api: false, worker: false }, logger);
      try {
        await runTenantCommand(app.services.tenants, parsed, (line) => console.log(line));
        return 0;
      } catch (error) {
        if (error instanceof InvalidInputError || error instanceof NotFoundError) {
          console.error(`refused: ${error.message}`);
          return 2;
        }
        throw error;
      } finally {
        await app.stop();
      }
    }
    default:
      console.error(usage);
      return 2;
  }
}

runMain(() => main(process.argv.slice(2)));
