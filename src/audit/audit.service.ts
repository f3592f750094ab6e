import { LockMode } from '@mikro-orm/core';
import { sql } from 'kysely';
import { newId } from '../db/ids.ts';
import type { EntityManager, Orm } from '../db/orm.ts';
import { tenantEm } from '../db/tenant-scope.ts';
import { z } from 'zod';
import { InvalidInputError } from '../errors.ts';
import { createdWithin, findPage, timeRange, type Page, type PageRequest } from '../pagination.ts';
import type { Actor } from '../tenancy/actor.ts';
import { GENESIS_HASH, auditHash } from './audit-hash.ts';
import type { AuditCheckpoint } from './audit-checkpoint.entity.ts';
import type { AuditCheckpoints } from './audit-checkpoints.ts';
import {
  AuditChainHeadEntity,
  AuditLogEntity,
  AuditOutboxEntity,
  type AuditLog,
  type Party,
} from './audit-log.entity.ts';
import type { OutboxRelay } from '../util/outbox-relay.ts';

export interface AuditEntryInput {
  action: string;
  related?: Party | null;
  relationName?: string | null;
  relationId?: string | null;
  metadata?: Record<string, unknown>;
  /** The chain to write to when it is not the actor's own (the operator creating a tenant). */
  tenantId?: string;
}

export type Recorder = (entry: AuditEntryInput) => void;

export interface AuditFilter {
  actions?: readonly string[] | null;
  executorId?: string | null;
  relationName?: string | null;
  relationId?: string | null;
  from?: Date | null;
  to?: Date | null;
}

export interface AuditTrailVerification {
  ok: boolean;
  /**
   * Entries checked, in sequence order; when a checkpoint does not match, those up to the last
   * checkpoint that did.
   */
  checked: number;
  /**
   * The first sequence whose entry is missing, altered or out of order, or, when a checkpoint does
   * not match, the first after the last checkpoint that did; null when ok.
   */
  firstBrokenSequence: number | null;
  reason: string | null;
  /** Keyed checkpoints that matched their entries. */
  checkpointsChecked: number;
  /** The newest checkpoint that matched: entries up to it cannot be rewritten without the key. */
  lastCheckpointSequence: number | null;
  /**
   * The newest checkpoint as the bus keeps it, found unchanged in the database; null when the bus
   * holds none for the tenant or did not answer (then checkpoints deleted from the end go unseen).
   */
  anchorSequence: number | null;
}

/** What the SIEM export streams: the entries, each checkpoint right after the entry it covers. */
export type AuditExportItem =
  { kind: 'entry'; entry: AuditLog } | { kind: 'checkpoint'; checkpoint: AuditCheckpoint };

const VERIFY_BATCH = 1_000;

export class AuditService {
  private readonly orm: Orm;
  private readonly outbox: Pick<OutboxRelay<AuditLog>, 'publish'>;
  private readonly checkpoints: Pick<
    AuditCheckpoints,
    'newest' | 'within' | 'walk' | 'holds' | 'anchored' | 'at'
  >;

  constructor(
    orm: Orm,
    outbox: Pick<OutboxRelay<AuditLog>, 'publish'>,
    checkpoints: Pick<AuditCheckpoints, 'newest' | 'within' | 'walk' | 'holds' | 'anchored' | 'at'>,
  ) {
    this.orm = orm;
    this.outbox = outbox;
    this.checkpoints = checkpoints;
  }

  /**
   * Runs `work` in one transaction on the actor's tenant; the entries it records are chained and
   * written in that same transaction, so a change and its audit entry commit or fail together.
   * After the commit they go to the bus.
   */
  async transact<T>(actor: Actor, work: (tx: EntityManager, record: Recorder) => Promise<T>): Promise<T> {
    const pending: AuditEntryInput[] = [];
    const written: AuditLog[] = [];
    const result = await tenantEm(this.orm, actor).transactional(async (tx) => {
      const value = await work(tx, (entry) => pending.push(entry));
      await tx.flush();
      const byChain = Map.groupBy(pending, (entry) => entry.tenantId ?? actor.tenantId);
      // Chains are locked in a fixed order so two transactions never wait on each other's heads.
      for (const chain of [...byChain.keys()].sort()) {
        written.push(...(await this.append(tx, actor, chain, byChain.get(chain)!)));
      }
      return value;
    });
    await this.outbox.publish(written);
    return result;
  }

  /** An entry of the actor's tenant; null for unknown ids and other tenants' entries. */
  async find(actor: Actor, id: string): Promise<AuditLog | null> {
    if (!z.uuid().safeParse(id).success) return null;
    return tenantEm(this.orm, actor).findOne(AuditLogEntity, { id });
  }

  /** Entries of the actor's tenant, newest first. */
  async list(actor: Actor, filter: AuditFilter, page: PageRequest): Promise<Page<AuditLog>> {
    if (filter.relationId && !filter.relationName) {
      throw new InvalidInputError([{ path: ['filter', 'relationId'], message: 'needs relationName' }]);
    }
    const { actions, executorId, relationName, relationId } = filter;
    return findPage(tenantEm(this.orm, actor), AuditLogEntity, page, (query) =>
      query
        .$if(!!actions?.length, (q) => q.where('action', 'in', [...actions!]))
        .$if(!!executorId, (q) => q.where(sql`executor->>'id'`, '=', executorId!))
        .$if(!!relationName, (q) => q.where('relation_name', '=', relationName!))
        .$if(!!relationId, (q) => q.where('relation_id', '=', relationId!))
        .$call(createdWithin(filter)),
    );
  }

  /**
   * Entries written within the range in sequence order, and the checkpoints written within it,
   * each right after the entry it covers (or, when that entry was written before the range, in
   * its place), in batches, for the SIEM export: memory stays constant.
   */
  async *stream(
    actor: Actor,
    range: { from?: Date | null; to?: Date | null },
  ): AsyncGenerator<AuditExportItem> {
    const checkpoints = this.checkpoints.within(actor, range);
    let checkpoint = await checkpoints.next();
    for await (const entry of this.entries(actor, range)) {
      while (!checkpoint.done && checkpoint.value.sequence < entry.sequence) {
        yield { kind: 'checkpoint', checkpoint: checkpoint.value };
        checkpoint = await checkpoints.next();
      }
      yield { kind: 'entry', entry };
      if (!checkpoint.done && checkpoint.value.sequence === entry.sequence) {
        yield { kind: 'checkpoint', checkpoint: checkpoint.value };
        checkpoint = await checkpoints.next();
      }
    }
    for (; !checkpoint.done; checkpoint = await checkpoints.next()) {
      yield { kind: 'checkpoint', checkpoint: checkpoint.value };
    }
  }

  private async *entries(actor: Actor, range: { from?: Date | null; to?: Date | null }) {
    let after = 0;
    for (;;) {
      const batch = await tenantEm(this.orm, actor).find(
        AuditLogEntity,
        { sequence: { $gt: after }, ...timeRange(range) },
        { orderBy: { sequence: 'asc' }, limit: 500 },
      );
      yield* batch;
      if (batch.length < 500) return;
      after = batch.at(-1)!.sequence;
    }
  }

  /**
   * Walks the actor's chain up to its head as read first (entries written meanwhile are for the
   * next check) and reports the first entry that is missing, altered or misplaced, or the first
   * checkpoint that does not match the entries (a chain rewritten with its hashes recomputed).
   */
  async verify(actor: Actor): Promise<AuditTrailVerification> {
    const em = tenantEm(this.orm, actor);
    // The newest checkpoint is read before the head: a checkpoint is written over a committed
    // head, so one past the head read next means entries were removed, not written meanwhile.
    const newest = await this.checkpoints.newest(actor);
    const head = await this.orm.em.fork().findOne(AuditChainHeadEntity, { tenantId: actor.tenantId });
    const last = head?.sequence ?? 0;
    const checkpoints = this.checkpoints.walk(actor, Math.min(newest?.sequence ?? 0, last));
    let anchorSequence: number | null = null;
    let expected = 1;
    let previousHash = GENESIS_HASH;
    const outcome = (checked: number, firstBrokenSequence: number | null, reason: string | null) => ({
      ok: reason === null,
      checked,
      firstBrokenSequence,
      reason,
      checkpointsChecked: checkpoints.checked,
      lastCheckpointSequence: checkpoints.lastSequence,
      anchorSequence,
    });
    const broken = (sequence: number, reason: string) => outcome(expected - 1, sequence, reason);
    for (;;) {
      const batch = await em.find(
        AuditLogEntity,
        { sequence: { $gte: expected, $lte: last } },
        { orderBy: { sequence: 'asc' }, limit: VERIFY_BATCH },
      );
      for (const entry of batch) {
        if (entry.sequence !== expected) return broken(expected, `entry ${expected} is missing`);
        if (entry.previousHash !== previousHash)
          return broken(expected, 'previousHash does not match the entry before');
        if (auditHash(entry) !== entry.hash)
          return broken(expected, 'the entry was altered: its hash does not match');
        const mismatch = await checkpoints.check(entry);
        // The entries up to the last checkpoint that held are the ones it certified; past it, the
        // links hold but a rewrite cannot be ruled out.
        if (mismatch) {
          const certified = checkpoints.lastSequence ?? 0;
          return outcome(certified, certified + 1, mismatch);
        }
        previousHash = entry.hash;
        expected++;
      }
      // Constant memory over millions of entries: forget each batch once checked.
      em.clear();
      if (batch.length < VERIFY_BATCH) break;
    }
    if (last >= expected) return broken(expected, `entries from ${expected} on are missing`);
    if (head && head.hash !== previousHash)
      return broken(expected - 1, 'the last entry differs from the chain head');
    // The bus's copy of the newest checkpoint: written after the database's, so the database has
    // it unless checkpoints were deleted (or one written meanwhile, which it then has too).
    const anchor = await this.checkpoints.anchored(actor);
    if (anchor) {
      const stored = await this.checkpoints.at(actor, anchor.sequence);
      if (!stored || stored.mac !== anchor.mac) {
        const certified = checkpoints.lastSequence ?? 0;
        return outcome(
          certified,
          certified + 1,
          `checkpoint at sequence ${anchor.sequence}, the newest the bus keeps, is ${stored ? 'not the one' : 'missing from'} the database: checkpoints were deleted`,
        );
      }
      anchorSequence = anchor.sequence;
    }
    if (newest && newest.sequence > last) {
      return broken(
        last + 1,
        this.checkpoints.holds(newest)
          ? `checkpoint at sequence ${newest.sequence} is past the chain head (${last}): entries were removed from the end`
          : `checkpoint at sequence ${newest.sequence} is forged: its mac was not made with this key`,
      );
    }
    return outcome(expected - 1, null, null);
  }

  private async append(tx: EntityManager, actor: Actor, tenantId: string, entries: AuditEntryInput[]) {
    await tx.execute(
      'insert into audit_chain_heads (tenant_id, sequence, hash) values (?, 0, ?) on conflict do nothing',
      [tenantId, GENESIS_HASH],
    );
    const head = await tx.findOneOrFail(
      AuditChainHeadEntity,
      { tenantId },
      { lockMode: LockMode.PESSIMISTIC_WRITE },
    );
    const rows: AuditLog[] = [];
    for (const input of entries) {
      const entry = {
        id: newId(),
        tenantId,
        sequence: head.sequence + 1,
        action: input.action,
        executor: { type: actor.kind, id: actor.tokenId, name: actor.name },
        related: input.related ?? null,
        relationName: input.relationName ?? null,
        relationId: input.relationId ?? null,
        // Stored as JSON: hash what a reader will get back.
        metadata: JSON.parse(JSON.stringify(input.metadata ?? {})) as Record<string, unknown>,
        ip: actor.request.ip,
        userAgent: actor.request.userAgent?.slice(0, 512) ?? null,
        requestId: actor.request.requestId,
        // Taken under the head lock, so time order follows sequence order within a chain.
        createdAt: new Date(),
        previousHash: head.hash,
      };
      const row = { ...entry, hash: auditHash(entry) };
      rows.push(row);
      head.sequence = row.sequence;
      head.hash = row.hash;
    }
    await tx.insertMany(AuditLogEntity, rows);
    await tx.insertMany(
      AuditOutboxEntity,
      rows.map((row) => ({ auditLogId: row.id, tenantId, createdAt: row.createdAt })),
    );
    await tx.flush();
    return rows;
  }
}
