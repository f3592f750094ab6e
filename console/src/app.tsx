import { useEffect, useRef, useState } from 'react';
import { onSignedOut } from './api/client.ts';
import { closeLive } from './api/live.ts';
import { session } from './api/session.ts';
import { AuditPage } from './pages/audit.tsx';
import { DeliveryPage } from './pages/delivery.tsx';
import { DeliveryStreamPage } from './pages/delivery-stream.tsx';
import { InboundPage } from './pages/inbound.tsx';
import { SignIn } from './pages/sign-in.tsx';
import { WebhookPage } from './pages/webhook.tsx';
import { WebhooksPage } from './pages/webhooks.tsx';
import { Link, navigate, usePath } from './router.tsx';
import { Empty } from './ui/states.tsx';

const NAV = [
  { to: '/webhooks', label: 'Webhooks' },
  { to: '/deliveries', label: 'Live deliveries' },
  { to: '/inbound', label: 'Inbound' },
  { to: '/audit', label: 'Audit log' },
];

/** An id from the address, or null when it is not valid %-encoding (decodeURIComponent would throw). */
function decoded(id: string) {
  try {
    return decodeURIComponent(id);
  } catch {
    return null;
  }
}

function page(path: string) {
  const [, section, id] = path.split('/');
  const param = id ? decoded(id) : undefined;
  if (param === null) {
    return (
      <Empty>
        This address names nothing: <Link to="/webhooks">Webhooks</Link>
      </Empty>
    );
  }
  switch (section) {
    case 'webhooks':
      return param ? <WebhookPage key={param} id={param} /> : <WebhooksPage />;
    case 'deliveries':
      return param ? <DeliveryPage key={param} id={param} /> : <DeliveryStreamPage />;
    case 'inbound':
      return <InboundPage />;
    case 'audit':
      return <AuditPage />;
    default:
      return null;
  }
}

export function App() {
  const [token, setToken] = useState(session.token);
  const path = usePath();
  const signOut = () => {
    session.signOut();
    closeLive();
    setToken(null);
  };
  useEffect(() => onSignedOut(signOut), []);
  useEffect(() => {
    if (token && !page(path)) navigate('/webhooks');
  }, [token, path]);
  useEffect(() => {
    const section = NAV.find((item) => path.startsWith(item.to));
    document.title = section ? `${section.label} · Herald` : 'Herald console';
  }, [path]);
  // A new page is announced as one: focus moves to its content, as a full page load would put it at the top.
  const first = useRef(true);
  useEffect(() => {
    if (first.current) first.current = false;
    else document.getElementById('main')?.focus();
  }, [path]);

  if (!token) {
    return (
      <SignIn
        onSignedIn={(next) => {
          session.signIn(next);
          setToken(next);
        }}
      />
    );
  }
  return (
    <div className="shell">
      <a className="skip" href="#main">
        Skip to content
      </a>
      <header className="top">
        <span className="brand">Herald</span>
        <nav aria-label="Sections">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <Link to={item.to} aria-current={path.startsWith(item.to) ? 'page' : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <button type="button" className="quiet" onClick={signOut}>
          Sign out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {page(path)}
      </main>
    </div>
  );
}
