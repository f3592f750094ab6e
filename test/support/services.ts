import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import pg from 'pg';

/** Where a test run finds PostgreSQL (a server URL, no database: the run makes its own) and NATS. */
export interface TestServices {
  postgres: string;
  nats: string;
}

export function testServices(env: NodeJS.ProcessEnv = process.env): TestServices {
  return {
    postgres: env.TEST_DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432',
    nats: env.TEST_NATS_URL ?? '127.0.0.1:4222',
  };
}

const HOW =
  'Start them with `docker compose up -d postgres nats` and run ' +
  '`TEST_DATABASE_URL=postgresql://herald:herald@127.0.0.1:5432 npm test`, ' +
  'or point TEST_DATABASE_URL (a server URL whose user may create databases) and TEST_NATS_URL ' +
  '(nats-server with JetStream, -js) at your own.';

/**
 * Why the tests cannot run against these services, in one message saying how to get them; null
 * when PostgreSQL answers and NATS answers with JetStream. Each is given `timeoutMs`.
 */
export async function unavailable(services: TestServices, timeoutMs = 3_000): Promise<string | null> {
  const problems: string[] = [];
  const client = new pg.Client({
    connectionString: `${services.postgres}/postgres`,
    connectionTimeoutMillis: timeoutMs,
  });
  try {
    await client.connect();
    await client.query('select 1');
  } catch (error) {
    problems.push(`PostgreSQL at ${redacted(services.postgres)} did not answer (${reason(error)})`);
  } finally {
    await client.end().catch(() => undefined);
  }
  try {
    const nc = await connect({ servers: services.nats, timeout: timeoutMs, reconnect: false });
    try {
      await (await jetstreamManager(nc, { timeout: timeoutMs })).getAccountInfo();
    } catch (error) {
      problems.push(`NATS at ${services.nats} has no JetStream (${reason(error)})`);
    } finally {
      await nc.close();
    }
  } catch (error) {
    problems.push(`NATS at ${services.nats} did not answer (${reason(error)})`);
  }
  return problems.length === 0
    ? null
    : `Herald's tests need PostgreSQL and NATS: ${problems.join('; ')}. ${HOW}`;
}

const reason = (error: unknown): string =>
  (error instanceof Error ? error.message || (error as { code?: string }).code : String(error)) ??
  'no reason given';

/** The URL without its password. */
function redacted(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    return parsed.href.replace(/\/$/, '');
  } catch {
    return url;
  }
}
