import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PothosValidationError } from '@pothos/core';
import {
  GraphQLError,
  OperationTypeNode,
  getOperationAST,
  type DocumentNode,
  type ExecutionArgs,
  type GraphQLSchema,
} from 'graphql';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { useServer } from 'graphql-ws/use/ws';
import { createYoga, maskError, useErrorHandler, type YogaInitialContext } from 'graphql-yoga';
import { WebSocketServer } from 'ws';
import type { Health, Services } from '../app.ts';
import type { Config } from '../config.ts';
import { isDatabaseUnavailable } from '../db/unavailable.ts';
import {
  ConflictError,
  CursorExpiredError,
  ForbiddenError,
  InvalidInputError,
  LiveUnavailableError,
  NotFoundError,
  PlanLimitError,
  SlowSubscriberError,
} from '../errors.ts';
import { auditExport } from '../http/audit-export.ts';
import { TokenSockets } from '../tenancy/token-sessions.ts';
import type { Logger } from '../logger.ts';
import type { Context } from './builder.ts';
import { disableIntrospection, limitAliases, limitTokens, yogaLogger } from './limits.ts';
import { endLiveOverHttp, shareLiveExecution } from './live.ts';
import { readBody, useReadBody } from './request-body.ts';
import { schema } from './schema.ts';

export interface Server {
  url: string;
  /** Stops accepting, closes sockets (1001), drains requests in flight. */
  close(): Promise<void>;
}

type ServerContext = { req: IncomingMessage; res: ServerResponse };
type InitialContext = YogaInitialContext & {
  req?: IncomingMessage;
  connectionParams?: Readonly<Record<string, unknown>>;
};

const unauthenticated = () =>
  new GraphQLError('missing or invalid bearer token', {
    extensions: { code: 'UNAUTHENTICATED', http: { status: 401, headers: { 'www-authenticate': 'Bearer' } } },
  });

/** Domain errors outside a result union still reach the client typed; anything else is masked. */
const codes = new Map<abstract new (...args: never[]) => Error, string>([
  [InvalidInputError, 'BAD_USER_INPUT'],
  [NotFoundError, 'NOT_FOUND'],
  [ForbiddenError, 'FORBIDDEN'],
  [ConflictError, 'CONFLICT'],
  [PlanLimitError, 'PLAN_LIMIT'],
  [CursorExpiredError, 'CURSOR_EXPIRED'],
  [SlowSubscriberError, 'SLOW_SUBSCRIBER'],
  [LiveUnavailableError, 'UNAVAILABLE'],
]);

function maskUnexpected(error: unknown, message: string, isDev?: boolean): Error {
  const original = error instanceof GraphQLError ? (error.originalError ?? error) : error;
  // Malformed or wrong-type global ids, and other arguments Pothos refuses: the client's input.
  if (original instanceof PothosValidationError) {
    const text = original.message.length > 200 ? `${original.message.slice(0, 200)}…` : original.message;
    return new GraphQLError(text, {
      ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
      extensions: { code: 'BAD_USER_INPUT' },
    });
  }
  for (const [type, code] of codes) {
    if (original instanceof type) {
      const fields = original instanceof InvalidInputError ? { fields: original.problems } : {};
      return new GraphQLError(original.message, {
        ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
        extensions: { code, ...fields },
      });
    }
  }
  if (isDatabaseUnavailable(original)) {
    return new GraphQLError('the database is unavailable; try again shortly', {
      ...(error instanceof GraphQLError ? { nodes: error.nodes, path: error.path } : {}),
      extensions: { code: 'UNAVAILABLE' },
    });
  }
  return maskError(error, message, isDev);
}

function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}

export async function createServer(deps: {
  config: Config;
  services: Services;
  health: Health;
  logger: Logger;
}): Promise<Server> {
  const { config, services, health, logger } = deps;
  const { production } = config.server;
  let accepting = true;

  const context = async (initial: InitialContext): Promise<Context> => {
    const authorization =
      initial.request.headers.get('authorization') ?? initial.connectionParams?.authorization;
    const requestId = initial.request.headers.get('x-request-id') ?? randomUUID();
    const actor = await services.auth.authenticate(typeof authorization === 'string' ? authorization : null, {
      ip: initial.req?.socket.remoteAddress ?? null,
      userAgent: initial.req?.headers['user-agent'] ?? null,
      requestId,
    });
    if (!actor) throw unauthenticated();
    return { actor, services, requestId, logger: logger.child({ requestId, tenantId: actor.tenantId }) };
  };

  const sockets = new TokenSockets(services.auth, logger);
  const yoga = createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    context,
    maskedErrors: { maskError: maskUnexpected },
    graphiql: production
      ? false
      : {
          title: 'Herald',
          subscriptionsProtocol: 'WS',
          headers: JSON.stringify({ Authorization: 'Bearer <token: .data/admin-token in embedded mode>' }),
        },
    landingPage: false,
    logging: yogaLogger(logger.child({ component: 'graphql' })),
    // Bodies are read, within the limit, before yoga sees them (request-body.ts).
    maxRequestBodySize: false,
    plugins: [
      useReadBody(),
      ...(production ? [disableIntrospection()] : []),
      limitAliases(30),
      limitTokens(5_000),
      shareLiveExecution(),
      endLiveOverHttp(sockets),
      // Queries and mutations run compiled (one compilation per operation text, cached): a page of
      // 50 rows costs a fraction of the interpreter's time. Subscriptions keep their own execution.
      useGraphQlJit(
        {},
        {
          enableIf: (args) =>
            getOperationAST(args.document, args.operationName)?.operation !== OperationTypeNode.SUBSCRIPTION,
        },
      ),
      useErrorHandler(({ errors, context: errorContext, phase }) => {
        // In the execution phase envelop hands over the execution args, not the context.
        const ctx = (
          phase === 'execution' ? (errorContext as unknown as ExecutionArgs).contextValue : errorContext
        ) as Partial<Context> | undefined;
        for (const error of errors) {
          const original = error instanceof GraphQLError ? error.originalError : error;
          if (
            original &&
            !(original instanceof GraphQLError) &&
            ![...codes.keys()].some((t) => original instanceof t)
          ) {
            (ctx?.logger ?? logger).error({ err: original, phase }, 'unexpected error');
          }
        }
      }),
    ],
  });

  const http = createHttpServer((req, res) => {
    const started = performance.now();
    const requestId = requestIdOf(req);
    req.headers['x-request-id'] = requestId;
    res.setHeader('x-request-id', requestId);
    res.on('finish', () => {
      const fields = {
        requestId,
        method: req.method,
        url: req.url,
        status: res.statusCode,
        ms: performance.now() - started,
      };
      if (res.statusCode >= 500 && req.url !== '/readyz') logger.error(fields, 'request');
      else logger.debug(fields, 'request');
    });
    if (!accepting) res.setHeader('connection', 'close');
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"ok"}');
      return;
    }
    if (req.url === '/audit/export' || req.url?.startsWith('/audit/export?')) {
      const request = {
        ip: req.socket.remoteAddress ?? null,
        userAgent: req.headers['user-agent'] ?? null,
        requestId,
      };
      void auditExport(req, res, { services, logger, request }).catch((error: unknown) => {
        logger.error({ err: error, requestId }, 'audit export failed');
        if (!res.headersSent) res.writeHead(500).end();
      });
      return;
    }
    if (req.url === '/readyz') {
      void readiness(res);
      return;
    }
    if (req.method !== 'POST') {
      void yoga(req, res);
      return;
    }
    void readBody(req, res, config.server.maxRequestBytes).then((read) => {
      if (read) void yoga(req, res);
    });
  });

  async function readiness(res: ServerResponse): Promise<void> {
    const send = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    };
    if (!accepting) return send(503, { status: 'stopping' });
    const dependencies = await health.check();
    const ready = Object.values(dependencies).every((state) => state === 'ok');
    send(ready ? 200 : 503, { status: ready ? 'ready' : 'unavailable', ...dependencies });
  }

  const wss = new WebSocketServer({
    server: http,
    path: '/graphql',
    maxPayload: config.server.maxRequestBytes,
  });
  type EnvelopedArgs = ExecutionArgs & {
    rootValue: { execute: (a: ExecutionArgs) => unknown; subscribe: (a: ExecutionArgs) => unknown };
  };
  /** What yoga.getEnveloped hands back (typed `any` by envelop). */
  interface Enveloped {
    schema: GraphQLSchema;
    parse: (source: string) => DocumentNode;
    validate: (schema: GraphQLSchema, document: DocumentNode) => readonly GraphQLError[];
    contextFactory: () => unknown;
    execute: (a: ExecutionArgs) => unknown;
    subscribe: (a: ExecutionArgs) => unknown;
  }
  const ws = useServer(
    {
      connectionInitWaitTimeout: 5_000,
      onConnect: async (ctx) => {
        const authorization = ctx.connectionParams?.authorization;
        const request = ctx.extra.request;
        const actor = await services.auth.authenticate(
          typeof authorization === 'string' ? authorization : null,
          {
            ip: request.socket.remoteAddress ?? null,
            userAgent: request.headers['user-agent'] ?? null,
            requestId: requestIdOf(request),
          },
        );
        if (!actor) {
          ctx.extra.socket.close(4401, 'Unauthorized');
          return false;
        }
        const { socket } = ctx.extra;
        socket.once(
          'close',
          sockets.track(actor, (reason) => socket.close(4401, reason)),
        );
        return true;
      },
      execute: (args) => (args as EnvelopedArgs).rootValue.execute(args) as never,
      subscribe: (args) => (args as EnvelopedArgs).rootValue.subscribe(args) as never,
      onSubscribe: async (ctx, _id, payload) => {
        const enveloped: Enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          request: new Request('http://herald/graphql', {
            headers: { 'x-request-id': requestIdOf(ctx.extra.request) },
          }),
        });
        let document: DocumentNode;
        try {
          document = enveloped.parse(payload.query);
        } catch (error) {
          return [error as GraphQLError];
        }
        let contextValue: unknown;
        try {
          contextValue = await enveloped.contextFactory();
        } catch (error) {
          // The token stopped working since the socket opened: the socket goes, as at connect.
          ctx.extra.socket.close(4401, 'Unauthorized');
          return [error as GraphQLError];
        }
        const args: EnvelopedArgs = {
          schema: enveloped.schema,
          operationName: payload.operationName,
          document,
          variableValues: payload.variables,
          contextValue,
          rootValue: { execute: enveloped.execute, subscribe: enveloped.subscribe },
        };
        const errors = enveloped.validate(args.schema, args.document);
        return errors.length > 0 ? errors : args;
      },
    },
    wss,
    config.live.keepAliveMs,
  );

  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen(config.server.port, config.server.host, () => resolve());
  });
  const { address, port } = http.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;

  return {
    url: `http://${host}:${port}`,
    async close() {
      accepting = false;
      sockets.stop();
      await ws.dispose();
      const closed = new Promise<void>((resolve) => http.close(() => resolve()));
      http.closeIdleConnections();
      // Long-lived responses (SSE) would hold the server open: cut them after the grace period.
      const force = setTimeout(() => http.closeAllConnections(), config.server.shutdownGraceMs);
      await closed;
      clearTimeout(force);
      await yoga.dispose();
    },
  };
}
