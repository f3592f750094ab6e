import {
  GraphQLError,
  createSourceEventStream,
  execute,
  print,
  type ExecutionArgs,
  type ExecutionResult,
  type subscribe,
} from 'graphql';
import type { Plugin } from 'graphql-yoga';
import { SlowSubscriberError } from '../errors.ts';
import type { Context } from './context.ts';
import type { TokenSessions } from '../tenancy/token-sessions.ts';

/** A live stream's item for its subscription field; its closing error becomes the field's error. */
export function liveItem<T>(value: T | SlowSubscriberError): T {
  if (value instanceof SlowSubscriberError) throw value;
  return value;
}

export const liveAfterArg = {
  description:
    'A streamCursor received earlier: what came after it is sent first, then live items, with no gap and no repeat. CURSOR_EXPIRED when it is too old to resume from.',
} as const;

export const streamCursorField = {
  nullable: true,
  description:
    'Set on items received from a subscription: give it as `after` when subscribing again to get what came since. Null on items read by queries.',
} as const;

type Result = ExecutionResult | Promise<ExecutionResult>;

/** Results by item, then by what a result depends on; an entry goes with its item. */
const executions = new WeakMap<object, Map<string, Result>>();

/**
 * Subscriptions that sent the same operation with the same variables and the same credentials
 * get the same result for an item, so it is executed once for all of them. The live hub hands
 * every local subscriber of a subject the same decoded item (replayed items are decoded per
 * subscriber, and are executed per subscriber): two thousand consoles watching one webhook cost
 * one execution per attempt instead of two thousand.
 */
export const shareLiveExecution = (): Plugin<Context> => ({
  onSubscribe({ setSubscribeFn }) {
    setSubscribeFn(subscribeShared as typeof subscribe);
  },
});

async function subscribeShared(args: ExecutionArgs) {
  const source = await createSourceEventStream(args);
  if (!(Symbol.asyncIterator in source)) return source;
  const key = sharingKey(args);
  return mapStream(source[Symbol.asyncIterator](), (item) => {
    if (typeof item !== 'object' || item === null) return execute({ ...args, rootValue: item });
    let results = executions.get(item);
    if (!results) executions.set(item, (results = new Map<string, Result>()));
    let result = results.get(key);
    if (!result) results.set(key, (result = execute({ ...args, rootValue: item })));
    return result;
  });
}

/** Everything a subscription's result for an item depends on besides the item. */
function sharingKey(args: ExecutionArgs): string {
  const { actor } = args.contextValue as Context;
  return JSON.stringify([
    actor.kind,
    actor.tenantId,
    actor.tokenId,
    actor.admin,
    [...actor.scopes].sort(),
    args.operationName ?? null,
    args.variableValues ?? null,
    args.document.loc?.source.body ?? print(args.document),
  ]);
}

/** Maps a stream's items; return() reaches the source at once, even while a next() waits. */
function mapStream<T, R>(source: AsyncIterator<T>, map: (item: T) => R | Promise<R>): AsyncGenerator<R> {
  const stream: AsyncGenerator<R> = {
    async next() {
      const step = await source.next();
      return step.done ? { done: true, value: undefined } : { done: false, value: await map(step.value) };
    },
    async return() {
      await source.return?.();
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      await source.return?.();
      throw error;
    },
    [Symbol.asyncIterator]: () => stream,
    [Symbol.asyncDispose]: async () => {
      await stream.return(undefined);
    },
  };
  return stream;
}

/**
 * Live results over HTTP (SSE) end when their client leaves, even one that left while the
 * subscription was starting (nothing reads, nor returns, a stream whose response found the client
 * gone), and when the token they were opened with stops working: the last item is then an
 * UNAUTHENTICATED error, as a WebSocket is closed with 4401. graphql-ws streams end with their socket.
 */
export const endLiveOverHttp = (sessions: TokenSessions): Plugin<Context> => ({
  onExecutionResult(payload) {
    const { request, result } = payload;
    const { actor } = payload.context as Partial<Context>;
    if (!result || !(Symbol.asyncIterator in result) || !actor) return;
    const stream = endable(result[Symbol.asyncIterator](), () => {
      untrack();
      request.signal.removeEventListener('abort', leave);
    });
    const untrack = sessions.track(actor, (reason) =>
      stream.end(new GraphQLError(reason, { extensions: { code: 'UNAUTHENTICATED' } })),
    );
    const leave = () => stream.end();
    request.signal.addEventListener('abort', leave, { once: true });
    if (request.signal.aborted) leave();
    payload.setResult(stream);
  },
});

/**
 * A stream that can be ended from outside, at once (the source's return() is, see LiveStream),
 * with a last error item when one is given; `onEnd` runs once, however it ends.
 */
function endable<T>(source: AsyncIterator<T>, onEnd: () => void) {
  type Last = { errors: GraphQLError[] };
  let last: Last | null = null;
  let finished = false;
  const finish = async () => {
    if (finished) return;
    finished = true;
    onEnd();
    await source.return?.();
  };
  const stream = {
    async next(): Promise<IteratorResult<T | Last>> {
      if (!finished) {
        try {
          const step = await source.next();
          if (!step.done) return step;
        } catch (error) {
          await finish();
          throw error;
        }
      }
      await finish();
      const error = last;
      last = null;
      return error ? { done: false, value: error } : { done: true, value: undefined };
    },
    async return(): Promise<IteratorResult<T | Last>> {
      await finish();
      return { done: true, value: undefined };
    },
    end(error?: GraphQLError) {
      if (finished) return;
      if (error) last = { errors: [error] };
      void finish();
    },
    [Symbol.asyncIterator]: () => stream,
  };
  return stream;
}
