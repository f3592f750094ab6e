import { hkdfSync } from 'node:crypto';
import { InvalidInputError } from '../errors.ts';
import { SecretBox } from '../util/secret-box.ts';

/** The live streams a subscription can resume in; a cursor is only valid in its own. */
export type LiveKind = 'events' | 'attempts' | 'audit' | 'inbound';

/** What live items carry besides their fields: where they sit in their stream. */
export interface Streamed {
  /** Set on items from a subscription; null on items read by queries. */
  streamCursor?: string;
}

/**
 * Resume cursors of live subscriptions. A cursor holds a position in a stream all tenants share,
 * so it is sealed (AES-256-GCM, a key derived from HERALD_SECRET_KEY): a tenant sees neither the
 * position nor, from two cursors, how much other tenants published in between. It names its
 * stream and its tenant: another stream's, or another tenant's, is refused.
 */
export class LiveCursors {
  private readonly box: SecretBox;

  constructor(secretKey: Buffer) {
    this.box = new SecretBox(Buffer.from(hkdfSync('sha256', secretKey, '', 'herald live cursors', 32)));
  }

  encode(kind: LiveKind, tenantId: string, seq: number): string {
    // Padded: the length of a cursor must not tell how far along the stream is.
    return this.box.seal(`${kind}:${tenantId}:${String(seq).padStart(16, '0')}`);
  }

  /** The stream sequence in a cursor of `kind` made for the tenant; InvalidInputError for anything else. */
  decode(kind: LiveKind, tenantId: string, cursor: string): number {
    let plain: string;
    try {
      plain = this.box.open(cursor);
    } catch {
      throw refused();
    }
    const [prefix, tenant, seq, ...rest] = plain.split(':');
    const value = Number(seq);
    if (
      prefix !== kind ||
      tenant !== tenantId ||
      rest.length > 0 ||
      !Number.isSafeInteger(value) ||
      value < 0
    )
      throw refused();
    return value;
  }
}

const refused = () =>
  new InvalidInputError([{ path: ['after'], message: 'not a cursor of this subscription' }]);
