import { stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import sirv, { type RequestHandler } from 'sirv';

export const CONSOLE_PREFIX = '/console';

/** /console itself and every path under it (not /consoles). */
export const isConsolePath = (path: string) =>
  path === CONSOLE_PREFIX || path.startsWith(`${CONSOLE_PREFIX}/`);

/** Where `npm run console:build` (scripts/console-build.ts) puts the built console. */
const BUILT = resolve(fileURLToPath(new URL('../../console/dist/', import.meta.url)));

/**
 * The console talks to this origin only (fetch and graphql-ws); uPlot positions its elements with
 * inline styles, and the page's icon is a data: URL.
 */
const HEADERS = {
  'content-security-policy':
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

const INDEX = join(BUILT, 'index.html');

/**
 * sirv serves the build from a list of its files taken once; the list is taken again when a new
 * build (a newer index.html) appears, so `npm run console:build` needs no restart.
 */
let served: { builtAt: number; handler: RequestHandler } | null = null;

function handlerFor(builtAt: number): RequestHandler {
  if (served?.builtAt !== builtAt) {
    const handler = sirv(BUILT, {
      // Any path without an extension is one of the console's own routes: index.html.
      single: true,
      etag: true,
      setHeaders(res, pathname) {
        for (const [name, value] of Object.entries(HEADERS)) res.setHeader(name, value);
        // Vite names assets after their content: cached for good; index.html is revalidated.
        res.setHeader(
          'cache-control',
          pathname.startsWith('/assets/') ? 'public, max-age=31536000, immutable' : 'no-cache',
        );
      },
    });
    served = { builtAt, handler };
  }
  return served.handler;
}

/** Serves the built console under /console: its files, and index.html for its routes. */
export async function consoleRoute(req: IncomingMessage, res: ServerResponse) {
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { allow: 'GET, HEAD' }).end();
    return;
  }
  const index = await stat(INDEX).catch(() => null);
  if (!index) {
    res
      .writeHead(503, { 'content-type': 'text/plain; charset=utf-8' })
      .end('The console is not built: run `npm run console:build` (npm start builds it when missing).\n');
    return;
  }
  req.url = req.url!.slice(CONSOLE_PREFIX.length) || '/';
  handlerFor(index.mtimeMs)(req, res, () => {
    res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('Not found\n');
  });
}
