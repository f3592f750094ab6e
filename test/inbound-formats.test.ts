import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modes, newEventType, startTestApp, webhookTo, type TestApp } from './support/app.ts';
import { InboundRequestDetail, post, requestNodeId, sourceOf } from './support/inbound.ts';
import { startReceiver, toLocalReceivers } from './support/receiver.ts';
import { waitFor } from './support/wait.ts';

const MiB = 1024 * 1024;

/** Posts with chunked transfer encoding: no Content-Length announces the size. */
function postChunked(url: string, body: Buffer, contentType: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'POST', headers: { 'content-type': contentType } }, (res) => {
      res.resume();
      resolve(res.statusCode!);
    });
    req.on('error', (error) =>
      (error as NodeJS.ErrnoException).code === 'EPIPE' ? undefined : reject(error),
    );
    for (let at = 0; at < body.length; at += 64 * 1024) req.write(body.subarray(at, at + 64 * 1024));
    req.end();
  });
}

describe.each(modes)('inbound formats and sizes (%s)', (mode) => {
  let h: TestApp;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;

  beforeAll(async () => {
    h = await startTestApp(mode, { env: toLocalReceivers });
    receiver = await startReceiver();
  });
  afterAll(async () => {
    await receiver?.close();
    await h?.stop();
  });

  const detail = async (id: string) =>
    (await h.gql(InboundRequestDetail, { id: requestNodeId(id) })).data!.inboundRequest!;

  /** A DEPLOYED source of `format` whose requests become events delivered to `path` at the receiver. */
  async function routedTo(path: string, format: 'CSV' | 'XML' | 'TXT' | 'JSON') {
    const type = await newEventType(h.operator, `Formats ${format}`);
    await webhookTo(h.gql, `${receiver.url}${path}`, [type]);
    return sourceOf(h.gql, {
      name: format,
      status: 'DEPLOYED',
      format,
      verification: { preset: 'NONE' },
      eventType: { fixed: type },
    });
  }

  it('turns a CSV body into rows delivered to an outgoing webhook', async () => {
    const source = await routedTo('/csv', 'CSV');
    const csv = 'number,seller,total\nFV/1,"ACME, Inc.",1230.00\nFV/2,Globex,99.50\n';
    expect(await post(source.url, csv, { 'content-type': 'text/csv' })).toMatchObject({
      status: 200,
      body: { outcome: 'ROUTED' },
    });
    const delivered = await waitFor(() => receiver.received.find((r) => r.path === '/csv'), {
      what: 'the CSV event',
    });
    expect((JSON.parse(delivered.body) as { current: unknown }).current).toEqual([
      { number: 'FV/1', seller: 'ACME, Inc.', total: '1230.00' },
      { number: 'FV/2', seller: 'Globex', total: '99.50' },
    ]);
  });

  it('turns an XML body into an object delivered to an outgoing webhook', async () => {
    const source = await routedTo('/xml', 'XML');
    const xml =
      '<?xml version="1.0"?><status invoice="FV/1"><state>ACCEPTED</state><ksef>00123</ksef></status>';
    const answer = await post(source.url, xml, { 'content-type': 'application/xml; charset=utf-8' });
    expect(answer.status).toBe(200);
    const delivered = await waitFor(() => receiver.received.find((r) => r.path === '/xml'), {
      what: 'the XML event',
    });
    expect((JSON.parse(delivered.body) as { current: unknown }).current).toEqual({
      status: { '@_invoice': 'FV/1', state: 'ACCEPTED', ksef: '00123' },
    });
    expect((await detail(answer.body.id!)).bodyText).toBe(xml);
  });

  it('refuses an XML entity bomb at once, keeping it unrouted', async () => {
    const source = await routedTo('/bomb', 'XML');
    const lol = Array.from({ length: 9 }, (_, i) =>
      i === 0 ? '<!ENTITY lol0 "lol">' : `<!ENTITY lol${i} "${`&lol${i - 1};`.repeat(10)}">`,
    ).join('');
    const bomb = `<?xml version="1.0"?><!DOCTYPE lolz [${lol}]><lolz>&lol8;</lolz>`;
    const started = performance.now();
    const answer = await post(source.url, bomb, { 'content-type': 'application/xml' });
    // A bound, not a benchmark: expanding the entities would take seconds and gigabytes.
    expect(performance.now() - started).toBeLessThan(1_000);
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'UNROUTABLE' } });
    const stored = await detail(answer.body.id!);
    expect(stored).toMatchObject({ parseStatus: 'FAILED', eventId: null, bodyText: bomb });
    expect(stored.parseError).toMatch(/document type declarations are not accepted/);
  });

  it('keeps a body that is not UTF-8 byte for byte', async () => {
    const source = await routedTo('/binary', 'TXT');
    const bytes = Buffer.from([0x00, 0xff, 0xfe, 0x80, 0x41, 0x0a, 0xc3]);
    const answer = await post(source.url, bytes, { 'content-type': 'text/plain' });
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'UNROUTABLE' } });
    const stored = await detail(answer.body.id!);
    expect(Buffer.from(stored.bodyBase64!, 'base64').equals(bytes)).toBe(true);
    expect(stored.bodySha256).toBe(createHash('sha256').update(bytes).digest('hex'));
    expect(stored.bodyText).toBeNull();
    expect(stored.parseError).toMatch(/UTF-8/);
  });

  it('keeps a verified body whose parse error quotes a NUL byte', async () => {
    const source = await routedTo('/nul', 'JSON');
    const answer = await post(source.url, Buffer.from('[1,\0]'));
    expect(answer).toMatchObject({ status: 200, body: { outcome: 'UNROUTABLE' } });
    const stored = await detail(answer.body.id!);
    expect(stored.bodyBase64).toBe(Buffer.from('[1,\0]').toString('base64'));
    expect(stored.parseError).toContain('\\u0000');
  });

  it('accepts a body of exactly 1 MiB and refuses one byte more, announced or not', async () => {
    const source = await sourceOf(h.gql, {
      name: 'Sizes',
      status: 'DRAFT',
      format: 'TXT',
      verification: { preset: 'NONE' },
      eventType: { fixed: await newEventType(h.operator, 'Sizes') },
    });
    expect(source.maxBytes).toBe(MiB);
    const full = Buffer.alloc(MiB, 'a');
    const fits = await post(source.url, full, { 'content-type': 'text/plain' });
    expect(fits).toMatchObject({ status: 200, body: { outcome: 'RECORDED' } });
    expect((await detail(fits.body.id!)).bodyBytes).toBe(MiB);
    const over = Buffer.alloc(MiB + 1, 'a');
    expect((await post(source.url, over, { 'content-type': 'text/plain' })).status).toBe(413);
    expect(await postChunked(source.url, over, 'text/plain')).toBe(413);
    expect(await postChunked(source.url, full, 'text/plain')).toBe(200);
  });
});
