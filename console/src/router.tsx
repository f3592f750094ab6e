import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent } from 'react';

/** Where Vite's base puts the console; Herald answers index.html for every path under it. */
const BASE = import.meta.env.BASE_URL.replace(/\/$/, '');

const current = () => location.pathname.slice(BASE.length) || '/';
const listeners = new Set<() => void>();
addEventListener('popstate', () => listeners.forEach((listener) => listener()));

export function navigate(to: string) {
  history.pushState(null, '', BASE + to);
  listeners.forEach((listener) => listener());
}

/** The path inside the console, e.g. /webhooks/V2ViaG9vazox. */
export function usePath(): string {
  const [path, setPath] = useState(current);
  useEffect(() => {
    const listener = () => setPath(current());
    listeners.add(listener);
    return () => void listeners.delete(listener);
  }, []);
  return path;
}

/** A real link (open in a new tab works) that navigates in place on a plain click. */
export function Link({ to, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const onClick = (event: MouseEvent<HTMLAnchorElement>) => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return <a href={BASE + to} onClick={onClick} {...rest} />;
}
