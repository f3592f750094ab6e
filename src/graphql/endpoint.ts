import type { IncomingMessage, Server as HttpServer, ServerResponse } from 'node:http';
import { Kind, OperationTypeNode, getOperationAST } from 'graphql';
import { useGraphQlJit } from '@envelop/graphql-jit';
import { createYoga, type YogaInitialContext } from 'graphql-yoga';
import type { Config } from '../config.ts';
import type { Logger } from '../logger.ts';
import type { Metrics } from '../metrics.ts';
import type { AuthService } from '../tenancy/auth.service.ts';
import { RateLimits } from '../tenancy/rate-limits.ts';
import { TokenSessions } from '../tenancy/token-sessions.ts';
import type { Authenticate, Context, Services } from './context.ts';
import { logUnexpected, maskUnexpected, rateLimited, unauthenticated } from './errors.ts';
import { renderGraphiQL } from './graphiql.ts';
import { checkedInput, disableIntrospection, limitAliases, limitTokens, yogaLogger } from './limits.ts';
import { endLiveOverHttp, shareLiveExecution } from './live.ts';
import { measureOperations, refusedOperation } from './measure.ts';
import { readBody, useReadBody } from './request-body.ts';
import { schema } from './schema.ts';
import { serveWebSockets } from './ws.ts';

type ServerContext = { req: IncomingMessage; res: ServerResponse };
type InitialContext = YogaInitialContext & {
  req?: IncomingMessage;
  connectionParams?: Readonly<Record<string, unknown>>;
};

export interface GraphqlEndpoint {
  /** Answers a request to /graphql (queries, mutations, SSE subscriptions, GraphiQL). */
  handle(req: IncomingMessage, res: ServerResponse): void;
  /** Serves graphql-ws on the server's /graphql upgrades. */
  listen(http: HttpServer): void;
  /** Closes the sockets (1001) and stops watching tokens: the first step of a shutdown. */
  closeSockets(): Promise<void>;
  /** Long-lived connections by token (sockets, SSE streams; the HTTP edge adds audit exports). */
  sessions: Pick<TokenSessions, 'track'>;
  dispose(): Promise<void>;
}

/** GraphQL over HTTP (yoga) and over WebSocket (graphql-ws), sharing one plugin pipeline. */
export function graphqlEndpoint(deps: {
  config: Config;
  services: Services;
  auth: AuthService;
  authenticate: Authenticate;
  /** Whether an error means the database did not answer (UNAVAILABLE rather than masked). */
  isUnavailable: (error: unknown) => boolean;
  metrics: Pick<Metrics, 'graphqlOperations' | 'graphqlSeconds'>;
  logger: Logger;
}): GraphqlEndpoint {
  const { config, services, authenticate, logger } = deps;
  const { production } = config.server;
  const limits = new RateLimits({ defaultPerSecond: config.server.rateLimitPerSecond });

  // Both paths have the node request: over WebSocket it is the upgrade's (ws.ts).
  const context = async (initial: InitialContext): Promise<Context> => {
    const req = initial.req!;
    const authorization =
      initial.request.headers.get('authorization') ?? initial.connectionParams?.authorization;
    const actor = await authenticate(authorization, req);
    if (!actor) {
      refusedOperation(deps.metrics);
      throw unauthenticated();
    }
    const waitMs = limits.take(actor);
    if (waitMs > 0) {
      refusedOperation(deps.metrics);
      throw rateLimited(waitMs);
    }
    const requestId = req.headers['x-request-id'] as string;
    const baseUrl =
      config.inbound.publicUrl ??
      `http://${req.headers.host ?? `${config.server.host}:${config.server.port}`}`;
    return {
      actor,
      services,
      requestId,
      baseUrl: baseUrl.replace(/\/+$/, ''),
      logger: logger.child({ requestId, tenantId: actor.tenantId }),
    };
  };

  const sessions = new TokenSessions(deps.auth, logger);
  const yoga = createYoga<ServerContext, Context>({
    schema,
    graphqlEndpoint: '/graphql',
    context,
    maskedErrors: { maskError: maskUnexpected(deps.isUnavailable) },
    graphiql: production
      ? false
      : {
          title: 'Herald',
          headers: JSON.stringify({ Authorization: 'Bearer <token: .data/admin-token in embedded mode>' }),
        },
    // Served whole by Herald (no CDN); subscriptions in it go over graphql-ws.
    renderGraphiQL,
    landingPage: false,
    logging: yogaLogger(logger.child({ component: 'graphql' })),
    // Bodies are read, within the limit, before yoga sees them (request-body.ts).
    maxRequestBodySize: false,
    // Herald takes no file uploads.
    multipart: false,
    plugins: [
      measureOperations(deps.metrics),
      useReadBody(),
      ...(production ? [disableIntrospection()] : []),
      limitAliases(30),
      limitTokens(5_000),
      checkedInput(),
      shareLiveExecution(),
      endLiveOverHttp(sessions),
      // Queries and mutations run compiled (one compilation per operation text, cached): a page of
      // 50 rows costs a fraction of the interpreter's time. Subscriptions keep their own execution.
      useGraphQlJit(
        {},
        {
          // Only documents of one operation: graphql-jit caches its compilation by document, not
          // by the operation named, and would run another than the one the plugins checked.
          enableIf: (args) =>
            args.document.definitions.filter((d) => d.kind === Kind.OPERATION_DEFINITION).length === 1 &&
            getOperationAST(args.document, args.operationName)?.operation !== OperationTypeNode.SUBSCRIPTION,
        },
      ),
      logUnexpected(logger),
    ],
  });

  let sockets: { dispose(): void | Promise<void> } | undefined;
  return {
    sessions,
    handle(req, res) {
      if (req.method !== 'POST') {
        void yoga(req, res);
        return;
      }
      void readBody(req, res, config.server.maxRequestBytes).then((read) => {
        if (read) void yoga(req, res);
      });
    },
    listen(http) {
      sockets = serveWebSockets(http, { yoga, sessions, authenticate, config });
    },
    async closeSockets() {
      sessions.stop();
      await sockets?.dispose();
    },
    async dispose() {
      await yoga.dispose();
    },
  };
}
