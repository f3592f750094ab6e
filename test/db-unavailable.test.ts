import { createServer } from 'node:net';
import pg from 'pg';
import { describe, expect, inject, it } from 'vitest';
import { isDatabaseUnavailable } from '../src/db/unavailable.ts';

describe('telling a database outage from a bad statement', () => {
  it('counts a refused connection, a terminated session and a lost connection as unavailable', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const { port } = closed.address() as { port: number };
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await new pg.Client({ host: '127.0.0.1', port, user: 'postgres' }).connect().then(
      () => null,
      (error: unknown) => error,
    );
    expect(isDatabaseUnavailable(refused)).toBe(true);

    const client = new pg.Client({ connectionString: inject('databaseUrl') });
    client.on('error', () => {});
    await client.connect();
    const terminated = await client.query('select pg_terminate_backend(pg_backend_pid())').then(
      () => null,
      (error: unknown) => error,
    );
    expect(isDatabaseUnavailable(terminated)).toBe(true);
    const afterwards = await client.query('select 1').then(
      () => null,
      (error: unknown) => error,
    );
    expect(isDatabaseUnavailable(afterwards)).toBe(true);
  });

  it('does not count a failing statement', async () => {
    const client = new pg.Client({ connectionString: inject('databaseUrl') });
    await client.connect();
    try {
      const syntax = await client.query('selec 1').then(
        () => null,
        (error: unknown) => error,
      );
      const division = await client.query('select 1/0').then(
        () => null,
        (error: unknown) => error,
      );
      expect(syntax).toBeInstanceOf(Error);
      expect(isDatabaseUnavailable(syntax)).toBe(false);
      expect(isDatabaseUnavailable(division)).toBe(false);
    } finally {
      await client.end();
    }
  });
});
