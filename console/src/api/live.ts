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

export type LiveState = 'connecting' | 'live' | 'reconnecting' | 'stopped';

interface Resumable {
  streamCursor?: string | null;
}

/**
 * Subscribes to a live field whose items carry a streamCursor, and resumes after reconnects
 * without a gap: graphql-ws sends the same payload object again when it resubscribes, so the
 * payload's `after` is kept at the last cursor received. A CURSOR_EXPIRED refusal (too long away)
 * starts over live, and says so through onGap.
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
  const offs = [
    live.on('connected', () => handlers.onState('live')),
    live.on('closed', () => {
      if (!stopped) handlers.onState('reconnecting');
    }),
  ];
  const start = () => {
    unsubscribe = live.subscribe<R>(payload, {
      next: (result) => {
        if (result.errors?.some((e) => e.extensions?.code === 'SLOW_SUBSCRIBER')) return;
        if (!result.data) return;
        const item = pick(result.data);
        if (item.streamCursor) payload.variables = { ...payload.variables, after: item.streamCursor };
        handlers.onItem(item);
      },
      error: (error) => {
        if (stopped) return;
        const expired =
          Array.isArray(error) &&
          error.some((e: { extensions?: { code?: string } }) => e.extensions?.code === 'CURSOR_EXPIRED');
        if (!expired) return handlers.onState('stopped');
        payload.variables = { ...payload.variables, after: null };
        handlers.onGap();
        start();
      },
      // Herald completes a subscriber that fell behind (SLOW_SUBSCRIBER): it resumes from its cursor.
      complete: () => {
        if (!stopped) start();
      },
    });
  };
  handlers.onState(connected ? 'live' : 'connecting');
  start();
  return () => {
    stopped = true;
    unsubscribe();
    for (const off of offs) off();
  };
}
