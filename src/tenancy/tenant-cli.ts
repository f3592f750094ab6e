import { parseArgs } from 'node:util';
import { NotFoundError } from '../errors.ts';
import { MAX_PAGE, type PageRequest } from '../pagination.ts';
import { operatorActor } from './actor.ts';
import type { TenantService } from './tenant.service.ts';

/** Each command of `npm run cli -- tenants …` and the options it takes. */
const commands = {
  create: ['max-webhooks', 'requests-per-second'],
  list: ['suspended', 'active'],
  get: [],
  suspend: ['reason'],
  resume: [],
  token: ['scopes', 'name', 'client', 'expires-at'],
} as const;
type Command = keyof typeof commands;

export interface TenantCommand {
  command: Command;
  /** The tenant's id (or, for create, its name). */
  subject: string;
  values: Record<string, string | boolean | undefined>;
}

/** Throws an Error saying what is wrong with the arguments; nothing has run yet. */
export function parseTenantCommand(args: string[]): TenantCommand {
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
  const [name, subject, ...rest] = positionals;
  if (!name || !Object.hasOwn(commands, name)) throw new Error(`unknown: tenants ${name ?? ''}`);
  const command = name as Command;
  if ((command === 'list') !== (subject === undefined) || rest.length > 0) {
    throw new Error(`tenants ${command}: wrong arguments`);
  }
  const allowed: readonly string[] = commands[command];
  const foreign = Object.keys(values).filter((option) => !allowed.includes(option));
  if (foreign.length > 0) throw new Error(`tenants ${command} takes no --${foreign.join(', --')}`);
  if (values.suspended && values.active) throw new Error('tenants list: --suspended or --active, not both');
  for (const option of ['max-webhooks', 'requests-per-second'] as const) {
    const value = values[option];
    if (value !== undefined && !/^\d{1,9}$/.test(value))
      throw new Error(`--${option} must be a whole number`);
  }
  return { command, subject: subject ?? '', values };
}

const integer = (value: string | boolean | undefined) => (typeof value === 'string' ? Number(value) : null);
const string = (value: string | boolean | undefined) => (typeof value === 'string' ? value : undefined);

/**
 * Runs a tenant command as the operator, printing JSON through `print`. The service validates
 * every value: a refusal is an InvalidInputError or a NotFoundError, and nothing was written.
 */
export async function runTenantCommand(
  service: TenantService,
  { command, subject, values }: TenantCommand,
  print: (line: string) => void,
): Promise<void> {
  const operator = operatorActor('cli');
  const show = (value: unknown) => print(JSON.stringify(value, null, 2));
  switch (command) {
    case 'create': {
      const created = await service.create(operator, {
        name: subject,
        maxWebhooks: integer(values['max-webhooks']),
        requestsPerSecond: integer(values['requests-per-second']),
      });
      return show({ tenantId: created.tenant.id, name: created.tenant.name, token: created.token });
    }
    case 'list': {
      const suspended = values.suspended ? true : values.active ? false : null;
      let after: PageRequest['after'] = null;
      for (;;) {
        const page = await service.list(operator, { suspended }, { first: MAX_PAGE, after });
        for (const tenant of page.items) print(JSON.stringify(tenant));
        if (!page.hasNextPage) return;
        after = page.items.at(-1)!;
      }
    }
    case 'get': {
      const [tenant] = await service.getMany(operator, [subject]);
      if (!tenant) throw new NotFoundError('Tenant', subject);
      return show(tenant);
    }
    case 'suspend':
      return show(await service.suspend(operator, { id: subject, reason: string(values.reason) ?? '' }));
    case 'resume':
      return show(await service.resume(operator, subject));
    case 'token': {
      const expiresAt = string(values['expires-at']);
      const issued = await service.issueToken(operator, {
        tenantId: subject,
        name: string(values.name) ?? 'Issued by the operator',
        // Checked by the service: an unknown scope or client is refused by name.
        scopes: (string(values.scopes) ?? '').split(',').filter(Boolean) as never,
        client: string(values.client) as never,
        expiresAt: expiresAt === undefined ? null : new Date(expiresAt),
      });
      const { id, tenantId, name, prefix, scopes, client } = issued.apiToken;
      return show({
        id,
        tenantId,
        name,
        prefix,
        scopes,
        client,
        expiresAt: issued.apiToken.expiresAt,
        token: issued.token,
      });
    }
  }
}
