import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modes, startTestApp, uniqueType, type TestApp } from './support/app.ts';
import { UpsertEventType } from './support/operations.ts';

const LIMIT = 16 * 1024;

const PUBLISH = `mutation ($input: PublishEventInput!) {
  publishEvent(input: $input) { __typename ... on PublishEventPayload { event { id } } }
}`;

interface Answer {
  status: number;
  body: { data?: Record<string, unknown>; errors?: { message: string; extensions?: { code?: string } }[] };
}

/** A POST to /graphql written as given: with a content-length, or chunked in pieces of `chunkBytes`. */
function post(
  url: string,
  token: string,
  body: string,
  options: { contentType?: string; chunkBytes?: number } = {},
): Promise<Answer> {
  const { contentType = 'application/json', chunkBytes } = options;
  return new Promise((resolve, reject) => {
    const req = request(`${url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': contentType,
        authorization: `Bearer ${token}`,
        ...(chunkBytes ? { 'transfer-encoding': 'chunked' } : { 'content-length': Buffer.byteLength(body) }),
      },
    });
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({
          status: res.statusCode!,
          body: JSON.parse(Buffer.concat(chunks).toString()) as Answer['body'],
        }),
      );
    });
    // The server may answer and close before the whole body is written.
    req.on('error', (error: NodeJS.ErrnoException) => (error.code === 'EPIPE' ? undefined : reject(error)));
    if (chunkBytes) {
      for (let at = 0; at < body.length; at += chunkBytes) req.write(body.slice(at, at + chunkBytes));
      req.end();
    } else {
      req.end(body);
    }
  });
}

describe.each(modes)('request bodies (%s mode)', (mode) => {
  let h: TestApp;
  let type: string;

  beforeAll(async () => {
    h = await startTestApp(mode, { env: { HERALD_MAX_REQUEST_BYTES: String(LIMIT) } });
    type = uniqueType();
    await h.operator(UpsertEventType, { input: { name: type, group: 'Bodies' } });
  });
  afterAll(async () => {
    await h?.stop();
  });

  /** A publishEvent request of exactly `bytes` bytes, told apart by its idempotency key. */
  const publishBody = (key: string, bytes: number) => {
    const bare = (pad: string) =>
      JSON.stringify({
        query: PUBLISH,
        variables: { input: { type, idempotencyKey: key, current: { pad } } },
      });
    return bare('x'.repeat(bytes - Buffer.byteLength(bare(''))));
  };

  const storedKeys = async () => {
    const answer = await post(
      h.url,
      h.token,
      JSON.stringify({ query: '{ events(first: 100) { edges { node { idempotencyKey } } } }' }),
    );
    const events = answer.body.data?.events as { edges: { node: { idempotencyKey: string } }[] };
    return events.edges.map((edge) => edge.node.idempotencyKey);
  };

  it('accepts a body of exactly the limit, declared or chunked', async () => {
    const declared = await post(h.url, h.token, publishBody('at-limit', LIMIT));
    expect(declared.status).toBe(200);
    expect(declared.body.data?.publishEvent).toMatchObject({ __typename: 'PublishEventPayload' });
    const chunked = await post(h.url, h.token, publishBody('at-limit-chunked', LIMIT), { chunkBytes: 1000 });
    expect(chunked.body.data?.publishEvent).toMatchObject({ __typename: 'PublishEventPayload' });
  });

  it('refuses a body over the limit with 413, whether declared or found while reading, storing nothing', async () => {
    for (const answer of [
      await post(h.url, h.token, publishBody('over-declared', LIMIT + 1)),
      await post(h.url, h.token, publishBody('over-chunked', LIMIT * 4), { chunkBytes: 1000 }),
    ]) {
      expect(answer.status).toBe(413);
      expect(answer.body.errors?.[0]?.extensions?.code).toBe('REQUEST_ENTITY_TOO_LARGE');
    }
    const keys = await storedKeys();
    expect(keys).toContain('at-limit');
    expect(keys).not.toContain('over-declared');
    expect(keys).not.toContain('over-chunked');
  });

  it('answers malformed JSON with 400, and reads the other GraphQL content types', async () => {
    const malformed = await post(h.url, h.token, '{"query": ');
    expect(malformed.status).toBe(400);
    expect(malformed.body.errors?.[0]?.message).toBe('POST body sent invalid JSON.');

    const graphqlText = await post(h.url, h.token, '{ viewer { operator } }', {
      contentType: 'application/graphql',
    });
    expect(graphqlText.body).toEqual({ data: { viewer: { operator: false } } });
  });
});
