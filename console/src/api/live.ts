import { createClient, type Client } from 'graphql-ws';
import type { TypedDocumentString } from '../gql/graphql.ts';
import { session } from './session.ts';

let client: Client | null = null;
let connected = false;

/** One graphql-ws socket for the whole console, opened on the first subscription. */
function liveClient(): Client {
  client ??= createClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/graphql`,
    // Herald reads the lower-case key.
    connectionParams: () => ({ authorization: `Bearer ${session.token() ?? ''}` }),
    retryAttempts: Infinity,
    // Moving between pages ends one subscription and starts the next: the socket stays open meanwhile.
    lazyCloseTimeout: 3_000,
    // 4401 and 4403: the token was revoked or lacks the scope; retrying would only fail again.
    shouldRetry: (event) => !(event instanceof CloseEvent && (event.code === 4401 || event.code === 4403)),
  });
  client.on('connected', () => (connected = true));
  client.on('closed', () => (connected = false));
  return client;
}

/** Closes the socket (on sign-out), so the next one is opened with the next token. */
export function closeLive() {
  void client?.dispose();
  client = null;
  connected = false;
}

/** A refused subscription is stopped, with Herald's message. */
export type LiveState = 'connecting' | 'live' | 'reconnecting' | { stopped: string };

interface Resumable {
  streamCursor?: string | null;
}

interface Refusal {
  message?: string;
  extensions?: { code?: unknown };
}

/** UNAVAILABLE (the bus did not answer) is retried after 1 s, doubling up to 30 s. */
const FIRST_RETRY_MS = 1_000;
const LAST_RETRY_MS = 30_000;

/**
 * Subscribes to a live field whose items carry a streamCursor, and resumes after reconnects
 * without a gap: graphql-ws sends the same payload object again when it resubscribes, so the
 * payload's `after` is kept at the last cursor received. Herald answers a refusal as a result
 * with errors and no data, then completes: CURSOR_EXPIRED (too long away) starts over live and
 * says so through onGap, UNAVAILABLE is retried with a backoff, and any other refusal stops the
 * subscription (resubscribing at once would only be refused again, and spend the token's rate).
 */
export function subscribeLive<R, V extends { after?: string | null }, Item extends Resumable>(
  document: TypedDocumentString<R, V>,
  variables: V,
  pick: (data: R) => Item,
  handlers: { onItem: (item: Item) => void; onState: (state: LiveState) => void; onGap: () => void },
): () => void {
  const live = liveClient();
  const payload = { query: document.toString(), variables: { ...variables } };
  let stopped = false;
  let unsubscribe = () => {};
  let retryIn = FIRST_RETRY_MS;
  let retry: ReturnType<typeof setTimeout> | undefined;
  const offs = [
    live.on('connected', () => {
      if (!stopped) handlers.onState('live');
    }),
    live.on('closed', () => {
      if (!stopped) handlers.onState('reconnecting');
    }),
  ];
  const stop = (message = 'the subscription was refused') => {
    stopped = true;
    handlers.onState({ stopped: message });
  };
  const start = () => {
    /** What the `complete` ending this subscription does; by default (SLOW_SUBSCRIBER) it resumes from the cursor. */
    let then = start;
    const refused = (errors: readonly Refusal[]) => {
      const [first] = errors;
      switch (first?.extensions?.code) {
        case 'SLOW_SUBSCRIBER':
          return;
        case 'CURSOR_EXPIRED':
          payload.variables = { ...payload.variables, after: null };
          return handlers.onGap();
        case 'UNAVAILABLE':
          handlers.onState('reconnecting');
          then = () => {
            retry = setTimeout(() => {
              handlers.onState(connected ? 'live' : 'connecting');
              start();
            }, retryIn);
            retryIn = Math.min(retryIn * 2, LAST_RETRY_MS);
          };
          return;
        default:
          stop(first?.message);
      }
    };
    unsubscribe = live.subscribe<R>(payload, {
      next: (result) => {
        if (!result.data) return refused(result.errors ?? []);
        retryIn = FIRST_RETRY_MS;
        const item = pick(result.data);
        if (item.streamCursor) payload.variables = { ...payload.variables, after: item.streamCursor };
        handlers.onItem(item);
      },
      // Refused before it ran (a rate limit, too many on the socket), or a socket closed for good (4401, 4403).
      error: (error) => {
        if (!stopped) stop(Array.isArray(error) ? (error as Refusal[])[0]?.message : undefined);
      },
      complete: () => {
        if (!stopped) then();
      },
    });
  };
  handlers.onState(connected ? 'live' : 'connecting');
  start();
  return () => {
    stopped = true;
    clearTimeout(retry);
    unsubscribe();
    for (const off of offs) off();
  };
}
