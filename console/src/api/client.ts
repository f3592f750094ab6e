import type { TypedDocumentString } from '../gql/graphql.ts';
import { session } from './session.ts';

/** A request the API refused as a whole (HTTP status or top-level GraphQL errors), not a typed result. */
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code?: string,
  ) {
    super(message);
  }
}

interface GraphqlResponse<R> {
  data?: R | null;
  errors?: { message: string; extensions?: { code?: string } }[];
}

/** Listeners told when the token stops working, so the shell can show the sign-in again. */
const signedOut = new Set<() => void>();
export const onSignedOut = (listener: () => void) => {
  signedOut.add(listener);
  return () => void signedOut.delete(listener);
};

/** Runs one query or mutation over POST /graphql with the session's token. */
export async function request<R, V>(
  document: TypedDocumentString<R, V>,
  variables: V,
  token = session.token(),
): Promise<R> {
  const response = await fetch('/graphql', {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/graphql-response+json, application/json',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify({ query: document.toString(), variables }),
  });
  const body = (await response.json().catch(() => ({}))) as GraphqlResponse<R>;
  const first = body.errors?.[0];
  if (response.status === 401 || first?.extensions?.code === 'UNAUTHENTICATED') {
    for (const listener of signedOut) listener();
    throw new ApiError(first?.message ?? 'The token is not valid', 401, 'UNAUTHENTICATED');
  }
  if (first || !body.data) {
    throw new ApiError(first?.message ?? `HTTP ${response.status}`, response.status, first?.extensions?.code);
  }
  return body.data;
}
