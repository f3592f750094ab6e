import { useCallback, useEffect, useState, type ReactNode } from 'react';
import { request } from '../api/client.ts';
import type { TypedDocumentString } from '../gql/graphql.ts';

export type Loaded<R> =
  { state: 'loading' } | { state: 'failed'; message: string } | { state: 'ready'; data: R };

/** Runs a query when its variables change; `reload` runs it again (after a mutation). */
export function useQuery<R, V>(document: TypedDocumentString<R, V>, variables: V) {
  const [loaded, setLoaded] = useState<Loaded<R>>({ state: 'loading' });
  const key = JSON.stringify(variables);
  const [generation, setGeneration] = useState(0);
  useEffect(() => {
    let current = true;
    request(document, JSON.parse(key) as V).then(
      (data) => current && setLoaded({ state: 'ready', data }),
      (error: unknown) =>
        current && setLoaded({ state: 'failed', message: String((error as Error).message) }),
    );
    return () => {
      current = false;
    };
  }, [document, key, generation]);
  const reload = useCallback(() => setGeneration((g) => g + 1), []);
  return { loaded, reload };
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="muted" role="status" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function Empty({ children }: { children: ReactNode }) {
  return <div className="empty">{children}</div>;
}

export function Failed({ message }: { message: string }) {
  return (
    <p className="form-error" role="alert">
      {message}
    </p>
  );
}

/** Renders a query's three states, the ready one by `children`. */
export function Show<R>({
  loaded,
  what,
  children,
}: {
  loaded: Loaded<R>;
  what: string;
  children: (data: R) => ReactNode;
}) {
  if (loaded.state === 'loading') return <Loading what={what} />;
  if (loaded.state === 'failed') return <Failed message={loaded.message} />;
  return <>{children(loaded.data)}</>;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'short', timeStyle: 'medium' });

export function Time({ at }: { at: string | null | undefined }) {
  if (!at) return <span className="muted">—</span>;
  return <time dateTime={at}>{timeFormat.format(new Date(at))}</time>;
}

const STATUS_TONE: Record<string, string> = {
  SUCCEEDED: 'ok',
  VERIFIED: 'ok',
  ROUTED: 'ok',
  FAILED: 'bad',
  RETRYING: 'warn',
  PENDING: 'neutral',
  PAUSED: 'warn',
  ACTIVE: 'ok',
  DISABLED: 'bad',
};

export function Badge({ value }: { value: string }) {
  return (
    <span className={`badge ${STATUS_TONE[value] ?? 'neutral'}`}>
      {value.toLowerCase().replace(/_/g, ' ')}
    </span>
  );
}
