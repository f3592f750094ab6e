import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Actor } from '../tenancy/actor.ts';
import type { AuthService } from '../tenancy/auth.service.ts';

/**
 * The one way a request becomes an actor, for every transport: GraphQL over HTTP and WebSocket,
 * the audit export. `authorization` is `Bearer <token>` from a header or a socket's
 * connectionParams; the request gives what the audit log records of the caller.
 */
export function authenticator(auth: AuthService) {
  return (authorization: unknown, req: IncomingMessage): Promise<Actor | null> =>
    auth.authenticate(typeof authorization === 'string' ? authorization : null, {
      ip: req.socket.remoteAddress ?? null,
      userAgent: req.headers['user-agent'] ?? null,
      requestId: req.headers['x-request-id'] as string,
    });
}

/** The caller's `x-request-id` when it is a plausible one, else a new id. */
export function requestIdOf(req: IncomingMessage): string {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && /^[\w.-]{1,64}$/.test(given) ? given : randomUUID();
}
