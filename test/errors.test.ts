import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modes, startTestApp, type TestApp } from './support/app.ts';

interface Answer {
  status: number;
  body: { errors?: { message: string; extensions?: Record<string, unknown> }[]; data?: unknown };
}

/** Every error carries a code and says accurately what was wrong. */
describe.each(modes)('errors a client gets (%s mode)', (mode) => {
  let h: TestApp;
  beforeAll(async () => {
    h = await startTestApp(mode);
  });
  afterAll(async () => {
    await h?.stop();
  });

  const post = async (body: string): Promise<Answer> => {
    const response = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${h.token}` },
      body,
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  };
  const get = async (search: string): Promise<Answer> => {
    const response = await fetch(`${h.url}/graphql?${search}`, {
      headers: { accept: 'application/json', authorization: `Bearer ${h.token}` },
    });
    return { status: response.status, body: (await response.json()) as Answer['body'] };
  };
  const codes = (answer: Answer) => answer.body.errors?.map((e) => e.extensions?.code);

  it('names the variable that does not coerce, with BAD_USER_INPUT', async () => {
    const answer = await post(
      JSON.stringify({
        query: 'query($f:Int){ webhooks(first:$f){ edges{cursor} } }',
        variables: { f: 'x' },
      }),
    );
    expect(codes(answer)).toEqual(['BAD_USER_INPUT']);
    expect(answer.body.errors![0]!.message).toMatch(/\$f/);
    const two = await post(
      JSON.stringify({
        query:
          'query($from: Int, $filter: WebhookFilter){ webhooks(first: $from, filter: $filter){ edges{cursor} } }',
        variables: { from: 5, filter: { isActive: 'yes' } },
      }),
    );
    expect(codes(two)).toEqual(['BAD_USER_INPUT']);
    expect(two.body.errors![0]!.message).toMatch(/\$filter/);
    expect(two.body.errors![0]!.message).not.toMatch(/\$from/);
  });

  it('names the variable that does not coerce over graphql-ws too', async () => {
    const client = h.ws();
    const results: unknown[] = [];
    const failure = await (async () => {
      try {
        for await (const result of client.iterate({
          query: 'subscription($t: [String!]){ eventPublished(types: $t){ type } }',
          variables: { t: [5] },
        }))
          results.push(result);
      } catch (error) {
        return error;
      }
    })();
    const errors = (failure ?? (results[0] as { errors?: unknown[] }).errors) as {
      message: string;
      extensions?: { code?: string };
    }[];
    expect(errors.map((e) => e.extensions?.code)).toEqual(['BAD_USER_INPUT']);
    expect(errors[0]!.message).toMatch(/\$t/);
  });

  it('refuses date-times PostgreSQL cannot store as BAD_USER_INPUT, in variables and literals', async () => {
    const webhookId = Buffer.from(`Webhook:${crypto.randomUUID()}`).toString('base64');
    for (const at of ['0000-06-01T00:00:00Z', '0001-01-01T00:00:00+14:00', '9999-12-31T23:59:59-14:00']) {
      const events = await post(
        JSON.stringify({
          query: 'query($f: EventFilter){ events(filter: $f){ edges{cursor} } }',
          variables: { f: { from: at } },
        }),
      );
      expect(codes(events), at).toEqual(['BAD_USER_INPUT']);
      const audit = await post(
        JSON.stringify({ query: `{ auditLogs(filter: { to: "${at}" }){ edges{cursor} } }` }),
      );
      expect(codes(audit), at).toEqual(['BAD_USER_INPUT']);
      const replay = await post(
        JSON.stringify({
          query: 'mutation($i: ReplayDeliveriesInput!){ replayDeliveries(input: $i){ __typename } }',
          variables: { i: { webhookId, since: at } },
        }),
      );
      expect(codes(replay), at).toEqual(['BAD_USER_INPUT']);
      const token = await post(
        JSON.stringify({
          query: 'mutation($i: CreateApiTokenInput!){ createApiToken(input: $i){ __typename } }',
          variables: { i: { name: 'dated', scopes: ['events:read'], expiresAt: at } },
        }),
      );
      expect(codes(token), at).toEqual(['BAD_USER_INPUT']);
    }
  });

  it('refuses a pagination cursor holding a time PostgreSQL cannot store', async () => {
    for (const at of [
      '0000-01-01T00:00:00.000Z',
      '-000001-01-01T00:00:00.000Z',
      '+010000-01-01T00:00:00.000Z',
      '+275760-09-13T00:00:00.000Z',
      '-271821-04-20T00:00:00.000Z',
    ]) {
      const after = Buffer.from(`${at}|${crypto.randomUUID()}`).toString('base64url');
      const answer = await post(
        JSON.stringify({
          query: 'query($a: String){ webhooks(after: $a){ edges{cursor} } }',
          variables: { a: after },
        }),
      );
      expect(codes(answer), at).toEqual(['BAD_USER_INPUT']);
    }
  });

  it('refuses strings PostgreSQL cannot hold, anywhere, as BAD_USER_INPUT', async () => {
    for (const [name, value] of [
      ['actions', ['a\u0000b']],
      ['executorId', 'x\u0000'],
      ['relationName', 'Web\u0000hook'],
      ['actions', ['\ud800']],
    ] as const) {
      const answer = await post(
        JSON.stringify({
          query: 'query($f: AuditLogFilter){ auditLogs(filter: $f){ edges{cursor} } }',
          variables: { f: { [name]: value } },
        }),
      );
      expect(codes(answer), name).toEqual(['BAD_USER_INPUT']);
    }
    const literal = await post(
      JSON.stringify({ query: '{ auditLogs(filter: { executorId: "a\\u0000" }){ edges{cursor} } }' }),
    );
    expect(codes(literal)).toEqual(['BAD_USER_INPUT']);
  });

  it("refuses a mutation's unstorable strings as a ValidationError naming the field", async () => {
    for (const field of ['group', 'description'] as const) {
      const input = { name: 'errors.text.checked', group: 'Errors', [field]: 'a\u0000b' };
      const response = await fetch(`${h.url}/graphql`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${h.operatorToken}` },
        body: JSON.stringify({
          query:
            'mutation($i: UpsertEventTypeInput!){ upsertEventType(input: $i){ __typename ... on ValidationError { fields { path } } } }',
          variables: { i: input },
        }),
      });
      const body = (await response.json()) as { data: { upsertEventType: unknown } };
      expect(body.data.upsertEventType, field).toEqual({
        __typename: 'ValidationError',
        fields: [{ path: ['input', field] }],
      });
    }
  });

  it('runs the operation named in a document of several, the one whose input was checked', async () => {
    const query = `query A($s: String) { auditLogs(filter: { executorId: $s }) { edges { cursor } } }
      mutation B($s: String!) { createApiToken(input: { name: $s, scopes: ["audit:read"] }) {
        __typename ... on ValidationError { fields { path } } } }`;
    const a = await post(JSON.stringify({ query, operationName: 'A', variables: { s: 'x' } }));
    expect(a.body.data).toEqual({ auditLogs: { edges: [] } });
    const b = await post(JSON.stringify({ query, operationName: 'B', variables: { s: 'a\u0000b' } }));
    expect(b.body).toEqual({
      data: { createApiToken: { __typename: 'ValidationError', fields: [{ path: ['input', 'name'] }] } },
    });
  });

  it('refuses JSON nested deeper than 64 levels with a clear error', async () => {
    let current: unknown = 'leaf';
    for (let i = 0; i < 3_000; i++) current = { c: current };
    const answer = await post(
      JSON.stringify({
        query: 'mutation($i: PublishEventInput!){ publishEvent(input: $i){ __typename } }',
        variables: { i: { type: 'a.b.c', current } },
      }),
    );
    expect(codes(answer)).toEqual(['BAD_USER_INPUT']);
    expect(answer.body.errors![0]!.message).toMatch(/nested deeper than 64/);
  });

  it('codes a document that does not parse, and one that does not validate', async () => {
    expect(codes(await post(JSON.stringify({ query: '{ webhooks(' })))).toEqual(['GRAPHQL_PARSE_FAILED']);
    expect(codes(await post(JSON.stringify({ query: '{ nothingLikeThis }' })))).toEqual([
      'GRAPHQL_VALIDATION_FAILED',
    ]);
  });

  it('answers a malformed JSON body with 400 and a plain, coded error', async () => {
    const answer = await post('{"query": "{ viewer { scopes } }"');
    expect(answer.status).toBe(400);
    expect(codes(answer)).toEqual(['BAD_REQUEST']);
    expect(JSON.stringify(answer.body)).not.toMatch(/originalError|SyntaxError/);
  });

  it('answers a GET or a form whose variables are not JSON with 400 and a plain, coded error', async () => {
    const query = encodeURIComponent('query($f:Int){ webhooks(first:$f){ edges{cursor} } }');
    for (const search of [
      `query=${query}&variables=notjson`,
      `query=${query}&variables={}=`,
      `query=${query}&%76ariables=x`,
      `query=${query}&extensions=%7Bbroken`,
    ]) {
      const answer = await get(search);
      expect(answer.status, search).toBe(400);
      expect(codes(answer), search).toEqual(['BAD_REQUEST']);
    }
    const form = await fetch(`${h.url}/graphql`, {
      method: 'POST',
      headers: {
        'content-type': 'application/x-www-form-urlencoded',
        accept: 'application/json',
        authorization: `Bearer ${h.token}`,
      },
      body: `query=${query}&variables=x`,
    });
    expect(form.status).toBe(400);
    expect(codes({ status: form.status, body: (await form.json()) as Answer['body'] })).toEqual([
      'BAD_REQUEST',
    ]);
    // What yoga reads as it always did still works: a value with an = in it, a stray %.
    const fine = await get(`query=${query}&variables=${encodeURIComponent('{"f": 1}')}&note=a=b%`);
    expect(fine.status).toBe(200);
  });
});
