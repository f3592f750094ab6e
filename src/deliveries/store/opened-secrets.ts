import { LRUCache } from 'lru-cache';
import type { SecretBox } from '../../util/secret-box.ts';

/** A webhook's sealed signing secrets, as stored. */
export interface SealedSecrets {
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: Date | null;
}

/**
 * Webhook secrets opened for signing. Each is opened once: every sealing is unique (a fresh IV),
 * so a rotated secret is a new key and a stale entry is never looked up again.
 */
export class OpenedSecrets {
  private readonly box: SecretBox;
  private readonly opened = new LRUCache<string, string>({ max: 10_000 });

  constructor(box: SecretBox) {
    this.box = box;
  }

  /** The live signing secrets: the current one, and the previous one during its grace period. */
  live(sealed: SealedSecrets, now: Date): string[] {
    const secrets = [this.open(sealed.secret)];
    const expires = sealed.previousSecretExpiresAt;
    if (sealed.previousSecret && expires && expires > now) secrets.push(this.open(sealed.previousSecret));
    return secrets;
  }

  private open(sealed: string): string {
    let secret = this.opened.get(sealed);
    if (secret === undefined) {
      secret = this.box.open(sealed);
      this.opened.set(sealed, secret);
    }
    return secret;
  }
}
