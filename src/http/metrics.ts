import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import { permits, requirement } from '../permissions.ts';
import type { Actor } from '../tenancy/actor.ts';
import { listen } from './listen.ts';

/** Answers a scrape: the exposition text, or 500 with the reason logged. */
export async function scrape(res: ServerResponse, metrics: Metrics, logger: Logger): Promise<void> {
  try {
    const text = await metrics.text();
    res.writeHead(200, { 'content-type': metrics.contentType }).end(text);
  } catch (error) {
    logger.error({ err: error }, 'metrics scrape failed');
    res.writeHead(500).end();
  }
}

/**
 * GET /metrics on the API port (no HERALD_METRICS_PORT): process metrics are the operator's, so
 * the scrape brings the operator token (Prometheus `authorization.credentials_file`).
 */
export async function metricsRoute(
  req: IncomingMessage,
  res: ServerResponse,
  deps: {
    metrics: Metrics;
    authenticate: (authorization: unknown, req: IncomingMessage) => Promise<Actor | null>;
    logger: Logger;
  },
): Promise<void> {
  const fail = (status: number, message: string) => {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ error: message }));
  };
  if (req.method !== 'GET') return fail(405, 'use GET');
  const actor = await deps.authenticate(req.headers.authorization, req);
  if (!actor) return fail(401, 'missing or invalid bearer token');
  if (!permits(actor, 'metrics.read')) return fail(403, requirement('metrics.read'));
  await scrape(res, deps.metrics, deps.logger);
}

/**
 * A listener of its own for scrapes (HERALD_METRICS_PORT), on every process: a worker has no API
 * port, and this one stays off the public one. It answers GET /metrics only, without a token: it
 * is bound where only the scraper reaches (HERALD_METRICS_HOST).
 */
export async function startMetricsServer(
  metrics: Metrics,
  options: { host: string; port: number },
  logger: Logger,
): Promise<{ url: string; close(): Promise<void> }> {
  const server = createServer((req, res) => {
    const path = req.url?.split('?', 1)[0];
    if (path !== '/metrics') return void res.writeHead(404).end();
    if (req.method !== 'GET') return void res.writeHead(405, { allow: 'GET' }).end();
    void scrape(res, metrics, logger);
  });
  const url = await listen(server, options.port, options.host);
  return {
    url: `${url}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}
