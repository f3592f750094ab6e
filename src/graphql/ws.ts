import type { Server as HttpServer } from 'node:http';
import { GraphQLError, type DocumentNode, type ExecutionArgs, type GraphQLSchema } from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Config } from '../config.ts';
import type { TokenSessions } from '../tenancy/token-sessions.ts';
import type { Authenticate } from './context.ts';

/** The subscriptions each socket opened, so that none outlives it. */
const streamsBySocket = new WeakMap<WebSocket, Set<AsyncGenerator>>();

/** `stream`, in `open` until it ends. */
function tracked<T>(open: Set<AsyncGenerator>, stream: AsyncGenerator<T>): AsyncGenerator<T> {
  const leave = <R>(step: IteratorResult<T, R>) => {
    if (step.done) open.delete(wrapper);
    return step;
  };
  const wrapper: AsyncGenerator<T> = {
    next: (...args) => stream.next(...args).then(leave),
    return: (value) => {
      open.delete(wrapper);
      return stream.return(value);
    },
    throw: (error) => {
      open.delete(wrapper);
      return stream.throw(error);
    },
    [Symbol.asyncIterator]: () => wrapper,
    [Symbol.asyncDispose]: () => wrapper.return(undefined).then(() => undefined),
  };
  open.add(wrapper);
  return wrapper;
}

function openStreams(socket: WebSocket): Set<AsyncGenerator> {
  let streams = streamsBySocket.get(socket);
  if (!streams) streamsBySocket.set(socket, (streams = new Set()));
  return streams;
}

type EnvelopedArgs = ExecutionArgs & {
  rootValue: { execute: (a: ExecutionArgs) => unknown; subscribe: (a: ExecutionArgs) => unknown };
};

/** What yoga.getEnveloped hands back (typed `any` by envelop). */
export interface Enveloped {
  schema: GraphQLSchema;
  parse: (source: string) => DocumentNode;
  validate: (schema: GraphQLSchema, document: DocumentNode) => readonly GraphQLError[];
  contextFactory: () => unknown;
  execute: (a: ExecutionArgs) => unknown;
  subscribe: (a: ExecutionArgs) => unknown;
}

/**
 * graphql-ws on the server's /graphql upgrades, through yoga's plugin pipeline (the same limits,
 * context and errors as over HTTP). A socket authenticates once, with connectionParams, and closes
 * with 4401 when its token stops working; every subscribe builds its context again, so a token
 * revoked meanwhile is refused there too.
 */
export function serveWebSockets(
  http: HttpServer,
  deps: {
    /** yoga's plugin pipeline for one operation (its `getEnveloped`). */
    yoga: { getEnveloped(initialContext: Record<string, unknown>): Enveloped };
    sessions: TokenSessions;
    authenticate: Authenticate;
    config: Config;
  },
): { dispose(): void | Promise<void> } {
  const { yoga, sessions, authenticate, config } = deps;
  const wss = new WebSocketServer({
    server: http,
    path: '/graphql',
    maxPayload: config.server.maxRequestBytes,
  });
  return useServer(
    {
      connectionInitWaitTimeout: 5_000,
      onConnect: async (ctx) => {
        const { socket, request } = ctx.extra;
        const actor = await authenticate(ctx.connectionParams?.authorization, request);
        if (!actor) {
          socket.close(4401, 'Unauthorized');
          return false;
        }
        socket.once(
          'close',
          sessions.track(actor, (reason) => socket.close(4401, reason)),
        );
        socket.once('close', () => {
          for (const stream of openStreams(socket)) void stream.return(undefined);
          streamsBySocket.delete(socket);
        });
        return true;
      },
      execute: (args) => (args as EnvelopedArgs).rootValue.execute(args) as never,
      subscribe: async (args) => {
        const result = await (args as EnvelopedArgs).rootValue.subscribe(args);
        // Ended with its socket whatever graphql-ws does with its id (an id reused while the
        // first subscribe was pending left that stream running, holding its token's allowance).
        const socket = (args.contextValue as { socket?: WebSocket }).socket;
        if (!socket || !result || typeof result !== 'object' || !(Symbol.asyncIterator in result))
          return result as never;
        return tracked(openStreams(socket), result as AsyncGenerator) as never;
      },
      onSubscribe: async (ctx, _id, payload) => {
        // graphql-ws counts this subscription among the socket's already.
        if (Object.keys(ctx.subscriptions).length > config.live.maxPerSocket) {
          return [
            new GraphQLError(
              `this socket holds ${config.live.maxPerSocket} subscriptions, the most it may (HERALD_LIVE_MAX_PER_SOCKET): end one first`,
              { extensions: { code: 'TOO_MANY_SUBSCRIPTIONS' } },
            ),
          ];
        }
        const enveloped: Enveloped = yoga.getEnveloped({
          ...ctx,
          req: ctx.extra.request,
          socket: ctx.extra.socket,
          params: payload,
          request: new Request('http://herald/graphql'),
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
          // The token stopped working since the socket opened: the socket goes, as at connect. A
          // refusal of this operation alone (a rate limit) leaves the socket and its others be.
          if ((error as GraphQLError).extensions?.code === 'UNAUTHENTICATED')
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
}
