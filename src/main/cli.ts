import { parseArgs } from 'node:util';
import { MikroORM as PgliteORM } from '@mikro-orm/pglite';
import { Migrator } from '@mikro-orm/migrations';
import { startApp } from '../app.ts';
import { loadConfig } from '../config.ts';
import { InvalidInputError, NotFoundError } from '../errors.ts';
import { MAX_PAGE, type PageRequest } from '../pagination.ts';
import type { TenantService } from '../tenancy/tenant.service.ts';
import { operatorActor } from '../tenancy/actor.ts';
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

const tenantCommands = ['create', 'list', 'get', 'suspend', 'resume', 'token'] as const;

function parseTenantsArgs(args: string[]) {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      'max-webhooks': { type: 'string' },
      'requests-per-second': { type: 'string' },
      suspended: { type: 'boolean' },
      active: { type: 'boolean' },
      reason: { type: 'string' },
      scopes: { type: 'string' },
      name: { type: 'string' },
      client: { type: 'string' },
      'expires-at': { type: 'string' },
    },
  });
  const [command, subject, ...rest] = positionals;
  if (!tenantCommands.includes(command as never)) throw new Error(`unknown: tenants ${command ?? ''}`);
  if ((command === 'list') !== (subject === undefined) || rest.length > 0) {
    throw new Error(`tenants ${command}: wrong arguments`);
  }
  return { command: command as (typeof tenantCommands)[number], subject: subject ?? '', values };
}

/** Numbers as given: the service refuses what is not an integer in range. */
const integer = (value: string | undefined) => (value === undefined ? null : Number(value));

const print = (value: unknown) => console.log(JSON.stringify(value, null, 2));

async function tenants(
  service: TenantService,
  { command, subject, values }: ReturnType<typeof parseTenantsArgs>,
) {
  const operator = operatorActor('cli');
  switch (command) {
    case 'create': {
      const created = await service.create(operator, {
        name: subject,
        maxWebhooks: integer(values['max-webhooks']),
        requestsPerSecond: integer(values['requests-per-second']),
      });
      return print({ tenantId: created.tenant.id, name: created.tenant.name, token: created.token });
    }
    case 'list': {
      const suspended = values.suspended ? true : values.active ? false : null;
      let after: PageRequest['after'] = null;
      for (;;) {
        const page = await service.list(operator, { suspended }, { first: MAX_PAGE, after });
        for (const tenant of page.items) console.log(JSON.stringify(tenant));
        if (!page.hasNextPage) return;
        after = page.items.at(-1)!;
      }
    }
    case 'get': {
      const [tenant] = await service.getMany(operator, [subject]);
      if (!tenant) throw new NotFoundError('Tenant', subject);
      return print(tenant);
    }
    case 'suspend':
      return print(await service.suspend(operator, { id: subject, reason: values.reason ?? '' }));
    case 'resume':
      return print(await service.resume(operator, subject));
    case 'token': {
      const issued = await service.issueToken(operator, {
        tenantId: subject,
        name: values.name ?? 'Issued by the operator',
        scopes: (values.scopes ?? '').split(',').filter(Boolean) as never,
        client: values.client as never,
        expiresAt: values['expires-at'] === undefined ? null : new Date(values['expires-at']),
      });
      const { id, tenantId, name, prefix, scopes, client, expiresAt } = issued.apiToken;
      return print({ id, tenantId, name, prefix, scopes, client, expiresAt, token: issued.token });
    }
  }
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
      let parsed: ReturnType<typeof parseTenantsArgs>;
      try {
        parsed = parseTenantsArgs(args.slice(1));
      } catch (error) {
        console.error(`${(error as Error).message}\n${usage}`);
        return 2;
      }
      const app = await startApp(config, { api: false, worker: false }, logger);
      try {
        await tenants(app.services.tenants, parsed);
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
