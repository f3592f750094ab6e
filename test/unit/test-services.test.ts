import { createServer } from 'node:net';
import { describe, expect, it } from 'vitest';
import { testServices, unavailable } from '../support/services.ts';

/** A port on 127.0.0.1 nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('the test services check', () => {
  it('reads TEST_DATABASE_URL and TEST_NATS_URL, local ones by default', () => {
    expect(testServices({})).toEqual({
      postgres: 'postgresql://postgres@127.0.0.1:5432',
      nats: '127.0.0.1:4222',
    });
    expect(
      testServices({ TEST_DATABASE_URL: 'postgresql://h:p@db:5432', TEST_NATS_URL: 'bus:4222' }),
    ).toEqual({
      postgres: 'postgresql://h:p@db:5432',
      nats: 'bus:4222',
    });
  });

  it('passes the services this run uses', async () => {
    expect(await unavailable(testServices())).toBeNull();
  });

  it('says at once, in one message, which service is missing and how to get it', async () => {
    const port = await closedPort();
    const message = await unavailable(
      { postgres: `postgresql://herald:secret@127.0.0.1:${port}`, nats: `127.0.0.1:${port}` },
      1_000,
    );
    expect(message).toMatch(/PostgreSQL at postgresql:\/\/herald:\*\*\*@127\.0\.0\.1:\d+ did not answer/);
    expect(message).toMatch(/NATS at 127\.0\.0\.1:\d+ did not answer/);
    expect(message).toContain('docker compose up -d postgres nats');
    expect(message).not.toContain('secret');
  });
});
