import type { WebSocket } from 'ws';
import type { Actor } from '../domain/tenancy/actor.ts';
import type { AuthService } from '../domain/tenancy/auth.service.ts';
import type { Logger } from '../logger.ts';

/** How often open sockets' tokens are checked again: how late another process's revocation or an expiry lands. */
const CHECK_EVERY_MS = 2_000;

/**
 * Open WebSockets by the token they authenticated with. A socket closes (4401) when its token is
 * revoked in this process, and within CHECK_EVERY_MS when it is revoked elsewhere or expires.
 */
export class TokenSockets {
  private readonly byToken = new Map<string, Set<WebSocket>>();
  private readonly expiries = new Map<WebSocket, Date>();
  private readonly auth: AuthService;
  private readonly logger: Logger;
  private readonly timer: NodeJS.Timeout;
  private readonly onRevoked = (tokenId: string) => this.close(tokenId, 'token revoked');

  constructor(auth: AuthService, logger: Logger) {
    this.auth = auth;
    this.logger = logger;
    auth.revocations.on('revoked', this.onRevoked);
    this.timer = setInterval(() => void this.check(), CHECK_EVERY_MS).unref();
  }

  track(socket: WebSocket, actor: Actor): void {
    if (!actor.tokenId) return;
    const tokenId = actor.tokenId;
    const sockets = this.byToken.get(tokenId) ?? new Set();
    sockets.add(socket);
    this.byToken.set(tokenId, sockets);
    if (actor.expiresAt) this.expiries.set(socket, actor.expiresAt);
    socket.once('close', () => {
      sockets.delete(socket);
      if (sockets.size === 0) this.byToken.delete(tokenId);
      this.expiries.delete(socket);
    });
  }

  stop(): void {
    clearInterval(this.timer);
    this.auth.revocations.off('revoked', this.onRevoked);
  }

  private close(tokenId: string, reason: string): void {
    for (const socket of this.byToken.get(tokenId) ?? []) socket.close(4401, reason);
  }

  private async check(): Promise<void> {
    const now = new Date();
    for (const [socket, expiresAt] of this.expiries)
      if (expiresAt <= now) socket.close(4401, 'token expired');
    const tokenIds = [...this.byToken.keys()];
    if (tokenIds.length === 0) return;
    try {
      const valid = await this.auth.stillValid(tokenIds);
      for (const tokenId of tokenIds) if (!valid.has(tokenId)) this.close(tokenId, 'token revoked');
    } catch (error) {
      this.logger.warn({ err: error }, 'could not check the tokens of open sockets');
    }
  }
}
