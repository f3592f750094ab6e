import { useState, type FormEvent } from 'react';
import { ApiError, request } from '../api/client.ts';
import { graphql } from '../gql/gql.ts';
import { describedBy, FieldMessage } from '../ui/errors.tsx';

const Viewer = graphql(`
  query ConsoleViewer {
    viewer {
      operator
      tenant {
        name
      }
    }
  }
`);

/** Checks the token with a viewer query before keeping it: a wrong one is told at once, by its field. */
export function SignIn({ onSignedIn }: { onSignedIn: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const { viewer } = await request(Viewer, {}, token.trim());
      if (!viewer.tenant) setError('This is not a tenant token: the console works with one tenant’s token.');
      else onSignedIn(token.trim());
    } catch (failure) {
      setError(
        failure instanceof ApiError && failure.status === 401
          ? 'Herald does not know this token (revoked or expired?).'
          : String((failure as Error).message),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="sign-in" id="main">
      <h1>Herald console</h1>
      <form onSubmit={(event) => void submit(event)} aria-label="Sign in">
        <label htmlFor="token">Tenant token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          required
          value={token}
          onChange={(event) => setToken(event.target.value)}
          {...describedBy('token-error', error)}
        />
        <FieldMessage id="token-error" message={error} />
        <p className="hint">Kept in this tab’s session storage only; closing the tab signs out.</p>
        <button type="submit" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}
