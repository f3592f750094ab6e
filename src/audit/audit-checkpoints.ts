import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import canonicalize from 'canonicalize';
import type { EventBus } from '../bus/bus.ts';
import { checkpointMessageV1, decode, encode, subjects, type CheckpointMessage } from '../bus/contracts.ts';
import type { Orm } from '../db/orm.ts';
import { sqlRows } from '../db/raw.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import { timeRange } from '../pagination.ts';
import type { Logger } from '../logger.ts';
import { pollLoop } from '../util/poll-loop.ts';
import { AuditCheckpointEntity, type AuditCheckpoint } from './audit-checkpoint.entity.ts';

/** previousMac of a tenant's first checkpoint. */
export const CHECKPOINT_GENESIS_MAC = '0'.repeat(64);

/** Tenants checkpointed per statement; a pass that wrote some is repeated at once. */
const PASS_LIMIT = 500;
const READ_BATCH = 1_000;

/**
 * The checkpoint key: the configured one (HERALD_AUDIT_CHECKPOINT_KEY, base64), else one derived
 * from HERALD_SECRET_KEY under a label of its own, so it is neither the key that seals webhook
 * secrets nor the cursors' key. It lives in the processes' configuration only, never in the
 * database: whoever owns the database cannot make a checkpoint.
 */
export function auditCheckpointKey(secretKey: Buffer, configured?: string): Buffer {
  if (configured) return Buffer.from(configured, 'base64');
  return Buffer.from(hkdfSync('sha256', secretKey, '', 'herald audit checkpoints', 32));
}

/**
 * HMAC-SHA256, hex, over the RFC 8785 canonical JSON of the checkpoint's fields but the mac
 * itself: canonical JSON cannot be read two ways, and previousMac chains each checkpoint to the one
 * before. Version 1 of the serialisation.
 */
export function checkpointMac(key: Buffer, checkpoint: Omit<AuditCheckpoint, 'mac'>): string {
  const canonical = canonicalize({
    v: 1,
    tenantId: checkpoint.tenantId,
    sequence: checkpoint.sequence,
    hash: checkpoint.hash,
    previousMac: checkpoint.previousMac,
    createdAt: checkpoint.createdAt.toISOString(),
  });
  return createHmac('sha256', key).update(canonical!).digest('hex');
}

/**
 * The chain heads due for a checkpoint, with the newest checkpoint to chain to (parameters:
 * `every`, the due time, the limit): `every` entries or more past the tenant's newest checkpoint,
 * or the first entry past it written before the due time. Only a head that is its entry's hash is
 * signed (the head row alone is no entry). Driven by audit_chain_heads, one row per tenant: the
 * newest checkpoint is one probe of its primary key, the entries probes of audit_logs'
 * (tenant, sequence) key, so a pass costs the number of tenants, not of entries, and nothing
 * when no chain moved.
 */
const DUE_SQL = `select h.tenant_id, h.sequence, h.hash,
    c.sequence as c_sequence, c.hash as c_hash, c.previous_mac as c_previous_mac, c.mac as c_mac,
    c.created_at as c_created_at
  from audit_chain_heads h
  join audit_logs head on head.tenant_id = h.tenant_id and head.sequence = h.sequence and head.hash = h.hash
  left join lateral (
    select sequence, hash, previous_mac, mac, created_at from audit_checkpoints c
    where c.tenant_id = h.tenant_id order by sequence desc limit 1
  ) c on true
  where h.sequence > coalesce(c.sequence, 0)
    and (h.sequence - coalesce(c.sequence, 0) >= ?
      or (select e.created_at from audit_logs e
          where e.tenant_id = h.tenant_id and e.sequence = coalesce(c.sequence, 0) + 1) <= ?)
  order by h.tenant_id
  limit ?`;

interface DueHead {
  tenant_id: string;
  sequence: string | number;
  hash: string;
  c_sequence: string | number | null;
  c_hash: string | null;
  c_previous_mac: string | null;
  c_mac: string | null;
  c_created_at: Date | string | null;
}

/**
 * Keyed checkpoints over each tenant's audit chain: written by worker processes, checked by
 * verifyAuditTrail, exported with the entries. The hash chain alone shows rows changed behind
 * Herald's back, but not a chain rewritten whole with its hashes recomputed; a checkpoint pins
 * a head's hash under a key the database does not hold.
 */
export class AuditCheckpoints {
  private readonly orm: Orm;
  private readonly key: Buffer;
  private readonly every: number;
  private readonly intervalMs: number;
  private readonly logger: Logger | undefined;
  private readonly bus: EventBus;
  private readonly subjects: ReturnType<typeof subjects>;

  constructor(
    deps: { orm: Orm; key: Buffer; bus: EventBus; prefix: string; logger?: Logger },
    options: { checkpointEvery: number; checkpointIntervalSeconds: number },
  ) {
    this.orm = deps.orm;
    this.key = deps.key;
    this.bus = deps.bus;
    this.subjects = subjects(deps.prefix);
    this.logger = deps.logger;
    this.every = options.checkpointEvery;
    this.intervalMs = options.checkpointIntervalSeconds * 1000;
  }

  /**
   * One pass: a checkpoint over every due head. Safe with several workers at once: each insert
   * names the checkpoint it follows, and the keys on (tenant, sequence) and (tenant, previousMac)
   * let only one successor of a checkpoint in; the losers' rows are skipped, their tenants
   * checkpointed by the winner. Heads are read as committed, so every checkpoint covers entries
   * that exist. A tenant whose newest checkpoint does not hold under the key is not chained to it:
   * that is logged as an error, for verifyAuditTrail to report; so is one whose checkpoints do not
   * reach the newest the bus keeps (some were deleted: signing its head would certify whatever
   * replaced them). While the bus does not answer, no checkpoint is written. Returns how many were
   * written, or more when a full pass leaves heads for the next one.
   */
  async writeDue(): Promise<number> {
    const em = this.orm.em.fork();
    const due = await em.execute<DueHead[]>(DUE_SQL, [
      this.every,
      new Date(Date.now() - this.intervalMs),
      PASS_LIMIT,
    ]);
    if (due.length === 0) return 0;
    const heads: { head: DueHead; previousMac: string }[] = [];
    for (const head of due) {
      const previousMac = this.chainable(head);
      const refusal =
        previousMac === null
          ? 'the newest audit checkpoint does not hold under the checkpoint key: not chaining to it'
          : await this.behindAnchor(head);
      if (refusal === 'bus unavailable') return 0;
      if (refusal === 'raced') continue;
      if (refusal) {
        this.logger?.error({ tenantId: head.tenant_id, sequence: Number(head.c_sequence) }, refusal);
        continue;
      }
      heads.push({ head, previousMac: previousMac! });
    }
    if (heads.length === 0) return 0;
    // Taken after the heads were read and checked, just before the insert: no checkpoint is older
    // than an entry it covers, and none lands in an export range that ended before it committed.
    const now = new Date();
    const rows: AuditCheckpoint[] = heads.map(({ head, previousMac }) => {
      const checkpoint = {
        tenantId: head.tenant_id,
        sequence: Number(head.sequence),
        hash: head.hash,
        previousMac,
        createdAt: now,
      };
      return { ...checkpoint, mac: checkpointMac(this.key, checkpoint) };
    });
    const inserted = await sqlRows<{ tenant_id: string; sequence: string | number }>(
      this.orm,
      `insert into audit_checkpoints (tenant_id, sequence, hash, previous_mac, mac, created_at)
       select x.tenant_id, x.sequence, x.hash, x.previous_mac, x.mac, x.created_at
       from jsonb_to_recordset($1::jsonb) as x(tenant_id uuid, sequence bigint, hash varchar, previous_mac varchar, mac varchar, created_at timestamptz)
       on conflict do nothing
       returning tenant_id, sequence`,
      [
        JSON.stringify(
          rows.map((row) => ({
            tenant_id: row.tenantId,
            sequence: row.sequence,
            hash: row.hash,
            previous_mac: row.previousMac,
            mac: row.mac,
            created_at: row.createdAt,
          })),
        ),
      ],
    );
    const written = new Set(inserted.map((row) => `${row.tenant_id}:${Number(row.sequence)}`));
    await this.anchor(rows.filter((row) => written.has(`${row.tenantId}:${row.sequence}`)));
    return due.length === PASS_LIMIT ? Math.max(inserted.length, 1) : inserted.length;
  }

  /**
   * Puts each new checkpoint on the bus, where only a tenant's newest is kept: out of the database
   * owner's reach, it shows checkpoints deleted from the end (verifyAuditTrail). One the bus does
   * not take is logged; the tenant's next checkpoint replaces it there.
   */
  private async anchor(written: AuditCheckpoint[]): Promise<void> {
    for (const checkpoint of written) {
      try {
        await this.bus.publish(
          this.subjects.checkpoint(checkpoint.tenantId),
          encode(checkpointMessageV1, { v: 1, ...checkpoint, createdAt: checkpoint.createdAt.toISOString() }),
          { msgId: `checkpoint:${checkpoint.tenantId}:${checkpoint.sequence}` },
        );
      } catch (error) {
        this.logger?.warn(
          { err: error, tenantId: checkpoint.tenantId, sequence: checkpoint.sequence },
          'audit checkpoint stored, not anchored on the bus',
        );
      }
    }
  }

  /**
   * The tenant's newest checkpoint as the bus keeps it; null when it holds none, undefined when
   * the bus did not answer.
   */
  async anchored(tenant: { tenantId: string }): Promise<CheckpointMessage | null | undefined> {
    try {
      const message = await this.bus.last(this.subjects.checkpoint(tenant.tenantId));
      if (!message) return null;
      const anchor = decode(checkpointMessageV1, message.data);
      // Only a checkpoint of this tenant's, made with the key, is an anchor: anyone who may
      // publish on the bus could put another there.
      const holds =
        anchor.tenantId === tenant.tenantId &&
        this.holds({ ...anchor, createdAt: new Date(anchor.createdAt) });
      if (!holds) {
        this.logger?.warn(
          { tenantId: tenant.tenantId },
          'ignored an audit checkpoint anchor that does not hold',
        );
        return null;
      }
      return anchor;
    } catch (error) {
      if (this.bus.isUnavailable(error)) return undefined;
      throw error;
    }
  }

  /** The tenant's checkpoint at a sequence, if the database has it. */
  at(tenant: { tenantId: string }, sequence: number): Promise<AuditCheckpoint | null> {
    return tenantEm(this.orm, tenant).findOne(AuditCheckpointEntity, { sequence });
  }

  /**
   * Why a head must not be checkpointed for the bus's sake: its tenant's checkpoints do not reach
   * the one the bus keeps (that one is newer, or not in the database); null when they do.
   */
  private async behindAnchor(head: DueHead): Promise<string | null> {
    const anchor = await this.anchored({ tenantId: head.tenant_id });
    if (anchor === undefined) return 'bus unavailable';
    if (anchor === null) return null;
    const newest = head.c_sequence === null ? 0 : Number(head.c_sequence);
    const kept =
      anchor.sequence === newest
        ? head.c_mac
        : (await this.at({ tenantId: head.tenant_id }, anchor.sequence))?.mac;
    if (kept === anchor.mac) {
      // Newer than the newest this pass read: another worker wrote and anchored it meanwhile.
      return anchor.sequence <= newest ? null : 'raced';
    }
    return `the audit checkpoint at sequence ${anchor.sequence}, the newest the bus keeps, is not in the database: not checkpointing over what replaced it`;
  }

  /** The mac a head's checkpoint chains to: its newest checkpoint's, if that holds; null if not. */
  private chainable(head: DueHead): string | null {
    if (head.c_mac === null) return CHECKPOINT_GENESIS_MAC;
    const newest = {
      tenantId: head.tenant_id,
      sequence: Number(head.c_sequence),
      hash: head.c_hash!,
      previousMac: head.c_previous_mac!,
      createdAt: new Date(head.c_created_at!),
    };
    return macsEqual(checkpointMac(this.key, newest), head.c_mac) ? head.c_mac : null;
  }

  /** Runs writeDue in a loop: often enough that no entry waits much past the interval. */
  start(logger: Logger): { stop(): Promise<void> } {
    return pollLoop(
      () => this.writeDue(),
      { intervalMs: Math.min(this.intervalMs, 5_000), what: 'audit checkpoints' },
      logger,
    );
  }

  /** The tenant's checkpoint of the highest sequence; null before its first. */
  newest(tenant: { tenantId: string }): Promise<AuditCheckpoint | null> {
    return tenantEm(this.orm, tenant).findOne(AuditCheckpointEntity, {}, { orderBy: { sequence: 'desc' } });
  }

  /**
   * The tenant's checkpoints written within the range, in sequence order, in batches (for the
   * export): chosen by their own time, not their entries', so that exports of consecutive ranges
   * carry every checkpoint once, also one written after the range of the entry it covers.
   */
  async *within(
    tenant: { tenantId: string },
    range: { from?: Date | null; to?: Date | null },
  ): AsyncGenerator<AuditCheckpoint> {
    let after = 0;
    for (;;) {
      const batch = await tenantEm(this.orm, tenant).find(
        AuditCheckpointEntity,
        { sequence: { $gt: after }, ...timeRange(range) },
        { orderBy: { sequence: 'asc' }, limit: READ_BATCH },
      );
      yield* batch;
      if (batch.length < READ_BATCH) return;
      after = batch.at(-1)!.sequence;
    }
  }

  /** Whether a checkpoint's mac holds under the key (not whether it matches the entries). */
  holds(checkpoint: AuditCheckpoint): boolean {
    return macsEqual(checkpointMac(this.key, checkpoint), checkpoint.mac);
  }

  /** A check of the tenant's checkpoints up to `last`, fed by a verification's walk of the chain. */
  walk(tenant: { tenantId: string }, last: number): CheckpointWalk {
    return new CheckpointWalk(this.key, (after) =>
      tenantEm(this.orm, tenant).find(
        AuditCheckpointEntity,
        { sequence: { $gt: after, $lte: last } },
        { orderBy: { sequence: 'asc' }, limit: READ_BATCH },
      ),
    );
  }
}

const macsEqual = (a: string, b: string) =>
  a.length === b.length && timingSafeEqual(Buffer.from(a), Buffer.from(b));

/**
 * Checks a tenant's checkpoints while a verification walks its entries in sequence order. Fed each
 * entry once the entry's own links held, it says what is wrong with the checkpoint at that
 * sequence, if there is one. Checkpoints are read in batches: memory stays constant.
 */
export class CheckpointWalk {
  /** Checkpoints that matched. */
  checked = 0;
  /** The newest checkpoint that matched: the entries up to it are the ones it certified. */
  lastSequence: number | null = null;
  private readonly key: Buffer;
  private readonly load: (after: number) => Promise<AuditCheckpoint[]>;
  private previousMac = CHECKPOINT_GENESIS_MAC;
  private batch: AuditCheckpoint[] = [];
  private position = 0;
  private exhausted = false;

  constructor(key: Buffer, load: (after: number) => Promise<AuditCheckpoint[]>) {
    this.key = key;
    this.load = load;
  }

  async check(entry: { sequence: number; hash: string }): Promise<string | null> {
    const checkpoint = await this.next();
    if (checkpoint?.sequence !== entry.sequence) return null;
    this.position++;
    const name = `checkpoint at sequence ${checkpoint.sequence}`;
    if (!macsEqual(checkpointMac(this.key, checkpoint), checkpoint.mac))
      return `${name} does not match: its mac was not made with this key over these fields`;
    if (checkpoint.previousMac !== this.previousMac)
      return `${name} does not follow the checkpoint before it: one was removed or replaced`;
    if (checkpoint.hash !== entry.hash)
      return `${name} does not match: entry ${entry.sequence} is not the one it certified, the chain was rewritten`;
    this.previousMac = checkpoint.mac;
    this.lastSequence = checkpoint.sequence;
    this.checked++;
    return null;
  }

  private async next(): Promise<AuditCheckpoint | undefined> {
    if (this.position === this.batch.length && !this.exhausted) {
      const after = this.batch.at(-1)?.sequence ?? 0;
      this.batch = await this.load(after);
      this.position = 0;
      this.exhausted = this.batch.length < READ_BATCH;
    }
    return this.batch[this.position];
  }
}
