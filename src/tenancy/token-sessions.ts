import type { Actor } from './actor.ts';
import type { AuthService } from './auth.service.ts';
import type { Logger } from '../logger.ts';

/** How often open sessions' tokens are checked again: how late another process's revocation or an expiry lands. */
const CHECK_EVERY_MS = 2_000;

/** A connection that lives as long as its token works: a WebSocket, an SSE stream. */
type Session = (reason: string) => void;

/**
 * Open WebSockets and SSE streams by the token they authenticated with. A session ends (a socket
 * closes with 4401) when its token is revoked in this process, and within CHECK_EVERY_MS when it
 * is revoked elsewhere or expires.
 */
export class TokenSessions {
  private readonly byToken = new Map<string, Set<Session>>();
  private readonly expiries = new Map<Session, Date>();
  private readonly auth: AuthService;
  private readonly logger: Logger;
  private readonly timer: NodeJS.Timeout;
  private readonly onRevoked = (tokenId: string, reason = 'token revoked') => this.end(tokenId, reason);

  constructor(auth: AuthService, logger: Logger) {
    this.auth = auth;
    this.logger = logger;
    auth.revocations.on('revoked', this.onRevoked);
    this.timer = setInterval(() => void this.check(), CHECK_EVERY_MS).unref();
  }

  /** Calls `end` with the reason once the actor's token stops working; returns the untrack. */
  track(actor: Actor, end: (reason: string) => void): () => void {
    if (!actor.tokenId) return () => {};
    const tokenId = actor.tokenId;
    // Its own function: the same `end` given twice is two sessions.
    const session: Session = (reason) => end(reason);
    const sessions = this.byToken.get(tokenId) ?? new Set();
    sessions.add(session);
    this.byToken.set(tokenId, sessions);
    if (actor.expiresAt) this.expiries.set(session, actor.expiresAt);
    return () => {
      sessions.delete(session);
      if (sessions.size === 0 && this.byToken.get(tokenId) === sessions) this.byToken.delete(tokenId);
      this.expiries.delete(session);
    };
  }

  stop(): void {
    clearInterval(this.timer);
    this.auth.revocations.off('revoked', this.onRevoked);
  }

  private end(tokenId: string, reason: string): void {
    for (const session of this.byToken.get(tokenId) ?? []) session(reason);
  }

  private async check(): Promise<void> {
    const now = new Date();
    for (const [session, expiresAt] of this.expiries) if (expiresAt <= now) session('token expired');
    const tokenIds = [...this.byToken.keys()];
    if (tokenIds.length === 0) return;
    try {
      const valid = await this.auth.stillValid(tokenIds);
      for (const tokenId of tokenIds) if (!valid.has(tokenId)) this.end(tokenId, 'token revoked');
    } catch (error) {
      this.logger.warn({ err: error }, 'could not check the tokens of open sockets');
    }
  }
}
