import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AuditService } from '../audit/audit.service.ts';
import type { Config } from '../config.ts';
import type { GraphqlEndpoint } from '../graphql/endpoint.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { Actor } from '../tenancy/actor.ts';
import type { InboundReceiver } from '../inbound/inbound-receiver.ts';
import { auditExport } from './audit-export.ts';
import { CONSOLE_PREFIX, consoleRoute, isConsolePath } from './console.ts';
import { INBOUND_PREFIX, inboundRoute } from './inbound.ts';
import { requestIdOf } from './authenticate.ts';
import { liveness, readiness, type Health } from './health.ts';
import { listen } from './listen.ts';
import { metricsRoute } from './metrics.ts';

export interface Server {
  url: string;
  /** Stops accepting, closes sockets (1001), drains requests in flight. */
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * Herald's HTTP edge: every route, request ids and request logs, and a graceful shutdown. Each
 * request gets an `x-request-id` (the caller's, if plausible) before any route sees it; so does
 * every WebSocket upgrade.
 */
export async function createServer(deps: {
  config: Config;
  graphql: GraphqlEndpoint;
  audit: AuditService;
  authenticate: (authorization: unknown, req: IncomingMessage) => Promise<Actor | null>;
  health: Health;
  inbound: InboundReceiver;
  metrics: Metrics;
  /** Serve /metrics (with the operator token): false when the metrics have a port of their own. */
  serveMetrics: boolean;
  logger: Logger;
}): Promise<Server> {
  const { config, graphql, metrics, logger } = deps;
  let accepting = true;

  const routes: Record<string, Handler> = {
    '/healthz': (_req, res) => liveness(res),
    '/readyz': (_req, res) => void readiness(res, deps.health, accepting),
    '/audit/export': (req, res) => {
      void auditExport(req, res, { ...deps, sessions: graphql.sessions }).catch((error: unknown) => {
        logger.error({ err: error, requestId: req.headers['x-request-id'] }, 'audit export failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    },
    // And every path under it: the console's files and its own client-side routes.
    [CONSOLE_PREFIX]: (req, res) => {
      void consoleRoute(req, res).catch((error: unknown) => {
        logger.error({ err: error, requestId: req.headers['x-request-id'] }, 'console request failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
    },
    ...(deps.serveMetrics && {
      '/metrics': (req: IncomingMessage, res: ServerResponse) => void metricsRoute(req, res, deps),
    }),
    // /graphql, and whatever else: yoga answers unknown paths with 404.
    '*': (req, res) => graphql.handle(req, res),
  };
  const inbound: Handler = (req, res) => {
    void inboundRoute(req, res, { receiver: deps.inbound, metrics, logger }).catch((error: unknown) => {
      logger.error({ err: error, requestId: req.headers['x-request-id'] }, 'inbound request failed');
      // Nothing was stored: the sender is told to try again (5xx), as every provider does.
      if (!res.headersSent) res.writeHead(503, { connection: 'close', 'retry-after': '5' }).end();
    });
  };

  const http = createHttpServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    req.headers['x-request-id'] = requestId;
    res.setHeader('x-request-id', requestId);
    const path = req.url?.split('?', 1)[0] ?? '/';
    const inboundPath = path.startsWith(INBOUND_PREFIX);
    const routePath = isConsolePath(path) ? CONSOLE_PREFIX : path;
    const handler = inboundPath ? inbound : routes[routePath];
    // On close, not finish: a response the client cut (an SSE stream ended by its reader) counts too.
    res.once('close', () => {
      // Bounded labels: a route of the table, never the path asked for.
      const route = inboundPath ? 'inbound' : handler ? routePath : path === '/graphql' ? path : 'other';
      metrics.httpRequests.inc({ route, code: `${Math.floor(res.statusCode / 100)}xx` });
      metrics.httpSeconds.observe({ route }, (performance.now() - started) / 1000);
    });
    res.on('finish', () => {
      const fields = {
        requestId,
        method: req.method,
        // An inbound URL's token lets anyone post: logs keep the prefix only.
        url: inboundPath ? `${INBOUND_PREFIX}…` : req.url,
        status: res.statusCode,
        ms: performance.now() - started,
      };
      if (res.statusCode >= 500 && path !== '/readyz') logger.error(fields, 'request');
      else logger.debug(fields, 'request');
    });
    if (!accepting) res.setHeader('connection', 'close');
    (handler ?? routes['*']!)(req, res);
  });
  // Registered before the WebSocket server's own upgrade listener, so it runs first.
  http.on('upgrade', (req: IncomingMessage) => {
    req.headers['x-request-id'] = requestIdOf(req);
  });
  graphql.listen(http);

  const url = await listen(http, config.server.port, config.server.host);

  return {
    url,
    async close() {
      accepting = false;
      await graphql.closeSockets();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      // Long-lived responses (SSE) would hold the server open: cut them after the grace period.
      const force = setTimeout(() => http.closeAllConnections(), config.server.shutdownGraceMs);
      await closed;
      clearTimeout(force);
      await graphql.dispose();
    },
  };
}
