import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Received {
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
  at: number;
}

export type Reply = (request: Received, res: ServerResponse) => unknown;

/** A real HTTP receiver on 127.0.0.1 that records what it gets and answers as the test says. */
export async function startReceiver(reply: Reply = (_req, res) => res.writeHead(200).end('ok')) {
  const received: Received[] = [];
  let current = reply;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const entry = {
        path: req.url ?? '/',
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
        at: Date.now(),
      };
      received.push(entry);
      void current(entry, res);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    received,
    reply(next: Reply) {
      current = next;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Settings that let Herald call loopback addresses (refused by default: SSRF). */
export const loopbackAllowed = { HERALD_ALLOWED_CIDRS: '127.0.0.0/8' };

/** Settings that let Herald deliver to local receivers: loopback, over plain http. */
export const toLocalReceivers = { ...loopbackAllowed, HERALD_ALLOW_HTTP: 'true' };
