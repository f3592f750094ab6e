import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RawRequest {
  method: string;
  path: string;
  body: unknown;
}

/**
 * The plain node:http server under each raw API baseline: a bearer token compared with one held
 * in memory (401 otherwise), the JSON body parsed, the handler's result answered as JSON. Tells
 * the parent its URL once listening (the child is started with fork).
 */
export function serve(token: string, handle: (request: RawRequest) => Promise<unknown>): void {
  const expected = `Bearer ${token}`;
  const server = createServer((req, res) => {
    if (req.headers.authorization !== expected) {
      res.writeHead(401).end();
      return;
    }
    readJson(req)
      .then((body) => handle({ method: req.method ?? 'GET', path: req.url ?? '/', body }))
      .then(
        (result) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(result)),
        (error: unknown) => res.writeHead(500).end(String(error)),
      );
  });
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    process.send?.(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString()) : null;
}
