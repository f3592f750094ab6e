/** The tenant token lives in session storage only: closing the tab signs out, and no cookie carries it. */
const KEY = 'herald.token';

export const session = {
  token: (): string | null => sessionStorage.getItem(KEY),
  signIn: (token: string) => sessionStorage.setItem(KEY, token),
  signOut: () => sessionStorage.removeItem(KEY),
};
