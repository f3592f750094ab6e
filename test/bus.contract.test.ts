import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { BusMessage, ConsumerSpec, EventBus, LiveMessage, StreamSpec } from '../src/bus/bus.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { NatsBus } from '../src/bus/nats.ts';
import type { Logger } from '../src/logger.ts';
import { recordingLogger } from './support/logs.ts';
import { waitFor } from './support/wait.ts';

const text = (s: string) => new TextEncoder().encode(s);
const read = (m: { data: Uint8Array }) => new TextDecoder().decode(m.data);

const implementations: Record<string, (logger: Logger) => Promise<EventBus>> = {
  nats: (logger) =>
    NatsBus.connect(
      { url: inject('natsUrl'), replicas: 1, duplicateWindowMs: 60_000, name: 'herald-test' },
      logger,
    ),
  memory: async (logger) => new MemoryBus({ duplicateWindowMs: 60_000 }, logger),
};

describe.each(Object.keys(implementations))('EventBus contract: %s', (kind) => {
  let bus: EventBus;
  const prefix = `${inject('natsPrefix')}_${kind}`;
  const logs = recordingLogger();

  beforeAll(async () => {
    bus = await implementations[kind]!(logs.logger);
  });
  afterAll(async () => {
    await bus.close();
  });

  /** A stream of its own for each test, so tests never see each other's messages. */
  async function freshStream(retention: StreamSpec['retention'] = 'limits', maxAgeMs = 3_600_000) {
    const token = `s${randomUUID().slice(0, 8)}`;
    const stream: StreamSpec = {
      name: `${prefix.toUpperCase()}_${token.toUpperCase()}`,
      subjects: [`${prefix}.${token}.>`],
      retention,
      maxAgeMs,
    };
    await bus.declareStreams([stream]);
    const consumer = (overrides: Partial<ConsumerSpec> = {}): ConsumerSpec => ({
      stream: stream.name,
      durable: 'worker',
      ackWaitMs: 30_000,
      maxWorkMs: 60_000,
      maxDeliver: 5,
      maxAckPending: 100,
      ...overrides,
    });
    return { subject: (tail: string) => `${prefix}.${token}.${tail}`, consumer, stream };
  }

  it('declares streams idempotently', async () => {
    const { stream } = await freshStream();
    await expect(bus.declareStreams([stream, { ...stream, maxAgeMs: 7_200_000 }])).resolves.toBeUndefined();
  });

  it('drops a publish whose message id was already seen', async () => {
    const { subject, consumer } = await freshStream();
    const first = await bus.publish(subject('a.created'), text('one'), { msgId: 'key-1' });
    const again = await bus.publish(subject('a.created'), text('one, again'), { msgId: 'key-1' });
    await bus.publish(subject('a.created'), text('two'), { msgId: 'key-2' });
    expect(first.duplicate).toBe(false);
    expect(again).toEqual({ seq: first.seq, duplicate: true });

    const seen: string[] = [];
    const consumption = bus.consume(consumer(), async (m) => void seen.push(read(m)), { concurrency: 4 });
    await waitFor(() => seen.length >= 2, { what: 'two messages' });
    await consumption.stop();
    expect(seen.sort()).toEqual(['one', 'two']);
  });

  it('hands a consumer the headers a message was published with, named in lower case, on every delivery', async () => {
    const { subject, consumer } = await freshStream();
    const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    await bus.publish(subject('h'), text('with'), { msgId: 'with', headers: { Traceparent: traceparent } });
    await bus.publish(subject('h'), text('without'), { msgId: 'without' });
    const seen: { body: string; count: number; headers: BusMessage['headers'] }[] = [];
    const consumption = bus.consume(
      consumer(),
      async (m) => {
        seen.push({ body: read(m), count: m.deliveryCount, headers: m.headers });
        if (m.deliveryCount === 1 && read(m) === 'with') m.nak();
      },
      { concurrency: 1 },
    );
    await waitFor(() => seen.length >= 3, { what: 'three deliveries' });
    await consumption.stop();
    expect(seen.filter((s) => s.body === 'with')).toEqual([
      { body: 'with', count: 1, headers: { traceparent } },
      { body: 'with', count: 2, headers: { traceparent } },
    ]);
    expect(seen.find((s) => s.body === 'without')?.headers).toEqual({});
  });

  it('keeps the newest messages of each subject when told, and reads the last one', async () => {
    const token = `s${randomUUID().slice(0, 8)}`;
    const subject = (tail: string) => `${prefix}.${token}.${tail}`;
    await bus.declareStreams([
      {
        name: `${prefix.toUpperCase()}_${token.toUpperCase()}`,
        subjects: [`${prefix}.${token}.>`],
        retention: 'limits',
        maxAgeMs: 3_600_000,
        maxPerSubject: 1,
      },
    ]);
    expect(await bus.last(subject('a'))).toBeNull();
    await bus.publish(subject('a'), text('a1'), { msgId: 'a1' });
    const a2 = await bus.publish(subject('a'), text('a2'), { msgId: 'a2' });
    await bus.publish(subject('b'), text('b1'), { msgId: 'b1' });
    expect(await bus.last(subject('a'))).toMatchObject({ subject: subject('a'), seq: a2.seq });
    expect(read((await bus.last(subject('a')))!)).toBe('a2');
    expect(read((await bus.last(subject('b')))!)).toBe('b1');
    // a1 is gone: the stream now starts after it, with a2 and b1.
    await expect(
      bus.replay(subject('>'), { afterSeq: 0, untilSeq: a2.seq + 1, limit: 10 }),
    ).rejects.toMatchObject({ reason: 'expired' });
    const kept = await bus.replay(subject('>'), { afterSeq: a2.seq - 1, untilSeq: a2.seq + 1, limit: 10 });
    expect(kept.map((m) => read(m))).toEqual(['a2', 'b1']);
  });

  it("forgets message ids after a stream's own duplicate window", async () => {
    const token = `s${randomUUID().slice(0, 8)}`;
    const subject = `${prefix}.${token}.n`;
    await bus.declareStreams([
      {
        name: `${prefix.toUpperCase()}_${token.toUpperCase()}`,
        subjects: [`${prefix}.${token}.>`],
        retention: 'limits',
        maxAgeMs: 3_600_000,
        duplicateWindowMs: 1_000,
      },
    ]);
    const first = await bus.publish(subject, text('note'), { msgId: 'note' });
    expect((await bus.publish(subject, text('note'), { msgId: 'note' })).duplicate).toBe(true);
    // Repeated until stored: the bus's own window (a minute here) would keep dropping it.
    const later = await waitFor(
      async () => {
        const ack = await bus.publish(subject, text('note'), { msgId: 'note' });
        return !ack.duplicate && ack;
      },
      { timeoutMs: 10_000, what: 'the message id to be forgotten' },
    );
    expect(later.seq).toBe(first.seq + 1);
  });

  it('shows live subscribers a duplicate publish not at all', async () => {
    const { subject } = await freshStream();
    const live: string[] = [];
    const sub = bus.subscribe(subject('>'), (m) => live.push(read(m)));
    let probes = 0;
    await waitFor(
      async () =>
        live.length > 0 ||
        void (await bus.publish(subject('probe'), text('probe'), { msgId: `p${probes++}` })),
      { what: 'the subscription to go live' },
    );
    live.length = 0;
    await bus.publish(subject('a'), text('once'), { msgId: 'dup' });
    await bus.publish(subject('a'), text('once, again'), { msgId: 'dup' });
    await bus.publish(subject('a'), text('sentinel'), { msgId: 'sentinel' });
    await waitFor(() => live.includes('sentinel'), { what: 'the sentinel' });
    sub.unsubscribe();
    expect(live.filter((m) => m !== 'probe')).toEqual(['once', 'sentinel']);
  });

  it('shares a durable consumer between consume calls: each message handled once', async () => {
    const { subject, consumer } = await freshStream('workqueue');
    const handled: string[] = [];
    const handler = async (m: BusMessage) => void handled.push(read(m));
    const a = bus.consume(consumer(), handler, { concurrency: 3 });
    const b = bus.consume(consumer(), handler, { concurrency: 3 });
    for (let i = 0; i < 40; i++) await bus.publish(subject('x'), text(`m${i}`), { msgId: `m${i}` });
    await waitFor(() => handled.length >= 40, { what: '40 messages' });
    await Promise.all([a.stop(), b.stop()]);
    expect(new Set(handled).size).toBe(40);
    expect(handled).toHaveLength(40);
  });

  it("tells a consumer's backlog: messages not handed out, and handed out but not settled", async () => {
    const { subject, consumer, stream } = await freshStream('workqueue');
    await expect(bus.consumerState(stream.name, 'worker')).resolves.toEqual({ pending: 0, ackPending: 0 });
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const consumption = bus.consume(consumer(), () => held, { concurrency: 1 });
    for (let i = 0; i < 3; i++) await bus.publish(subject('x'), text(`m${i}`), { msgId: `m${i}` });
    // JetStream hands a pull consumer several messages at once: only the sum is fixed.
    await waitFor(
      async () => {
        const { pending, ackPending } = await bus.consumerState(stream.name, 'worker');
        return ackPending >= 1 && pending + ackPending === 3;
      },
      { what: 'three messages in the backlog, one at least handed out' },
    );
    release();
    await waitFor(
      async () => {
        const { pending, ackPending } = await bus.consumerState(stream.name, 'worker');
        return pending + ackPending === 0;
      },
      { what: 'an empty backlog' },
    );
    await consumption.stop();
  });

  it('redelivers a nak after its delay, counting deliveries', async () => {
    const { subject, consumer } = await freshStream();
    const deliveries: { count: number; at: number }[] = [];
    const consumption = bus.consume(
      consumer(),
      async (m) => {
        deliveries.push({ count: m.deliveryCount, at: Date.now() });
        if (m.deliveryCount === 1) m.nak(800);
      },
      { concurrency: 1 },
    );
    await bus.publish(subject('retry'), text('r'), { msgId: 'r' });
    await waitFor(() => deliveries.length >= 2, { what: 'redelivery' });
    await consumption.stop();
    expect(deliveries.map((d) => d.count)).toEqual([1, 2]);
    expect(deliveries[1]!.at - deliveries[0]!.at).toBeGreaterThanOrEqual(700);
  });

  it('redelivers a message whose handler threw, and logs the error', async () => {
    const { subject, consumer } = await freshStream();
    const counts: number[] = [];
    const consumption = bus.consume(
      consumer(),
      async (m) => {
        counts.push(m.deliveryCount);
        if (m.deliveryCount === 1) throw new Error('receiver down');
      },
      { concurrency: 1 },
    );
    await bus.publish(subject('boom'), text('b'), { msgId: 'b' });
    await waitFor(() => counts.length >= 2, { what: 'redelivery after a throw' });
    await consumption.stop();
    expect(counts).toEqual([1, 2]);
    expect(logs.lines.filter((l) => l.level === 50 && l.err?.message === 'receiver down')).toHaveLength(1);
  });

  it('keeps a message its handler works on from coming back, for up to maxWorkMs', async () => {
    const { subject, consumer } = await freshStream();
    const counts: number[] = [];
    let done = 0;
    const consumption = bus.consume(
      consumer({ ackWaitMs: 600, maxWorkMs: 10_000 }),
      async (m) => {
        counts.push(m.deliveryCount);
        // Four ack waits: without the in-progress reports it would come back meanwhile, to the
        // consumer's second slot.
        await new Promise((resolve) => setTimeout(resolve, 2_400));
        done++;
      },
      { concurrency: 2 },
    );
    await bus.publish(subject('long'), text('l'), { msgId: 'l' });
    await waitFor(() => done >= 1, { what: 'the work to finish', timeoutMs: 15_000 });
    await consumption.stop();
    expect(counts).toEqual([1]);
  });

  it('redelivers work held past maxWorkMs, after the ack wait', async () => {
    const { subject, consumer } = await freshStream();
    const counts: number[] = [];
    let release: () => void = () => {};
    const stuck = new Promise<void>((resolve) => (release = resolve));
    const consumption = bus.consume(
      consumer({ ackWaitMs: 1000, maxWorkMs: 1000 }),
      async (m) => {
        counts.push(m.deliveryCount);
        if (m.deliveryCount === 1) await stuck;
      },
      { concurrency: 2 },
    );
    await bus.publish(subject('slow'), text('s'), { msgId: 's' });
    await waitFor(() => counts.length >= 2, { what: 'redelivery after maxWorkMs and the ack wait' });
    release();
    await consumption.stop();
    expect(counts).toEqual([1, 2]);
  });

  it('fans live messages out to every subscriber of a matching subject only', async () => {
    const { subject } = await freshStream();
    const tenantA: LiveMessage[] = [];
    const tenantA2: LiveMessage[] = [];
    const everything: LiveMessage[] = [];
    const subs = [
      bus.subscribe(subject('tenant-a.>'), (m) => tenantA.push(m)),
      bus.subscribe(subject('tenant-a.>'), (m) => tenantA2.push(m)),
      bus.subscribe(subject('>'), (m) => everything.push(m)),
    ];
    // Subscriptions go live asynchronously: probe until all three have seen one.
    let probes = 0;
    await waitFor(
      async () =>
        (tenantA.length > 0 && tenantA2.length > 0 && everything.length > 0) ||
        void (await bus.publish(subject('tenant-a.probe'), text('probe'), { msgId: `probe-${probes++}` })),
      { what: 'the subscriptions to go live' },
    );
    await bus.publish(subject('tenant-a.marker'), text('marker'), { msgId: 'marker' });
    await waitFor(
      () => [tenantA, tenantA2, everything].every((list) => list.some((m) => read(m) === 'marker')),
      {
        what: 'the marker',
      },
    );
    for (const list of [tenantA, tenantA2, everything]) list.length = 0;

    await bus.publish(subject('tenant-b.invoice.paid'), text('for b'), { msgId: 'b1' });
    await bus.publish(subject('tenant-a.invoice.paid'), text('for a'), { msgId: 'a1' });
    // Each subscriber sees the stream in order: once tenant A's subscribers saw A's message, which
    // was published after B's, they were offered B's too if they were ever going to be.
    await waitFor(() => everything.length === 2 && tenantA.length === 1 && tenantA2.length === 1, {
      what: 'fan-out',
    });
    for (const s of subs) s.unsubscribe();
    expect(tenantA.map(read)).toEqual(['for a']);
    expect(tenantA2.map(read)).toEqual(['for a']);
    expect(everything.map((m) => m.subject)).toEqual([
      subject('tenant-b.invoice.paid'),
      subject('tenant-a.invoice.paid'),
    ]);
    expect(everything[1]!.seq).toBeGreaterThan(everything[0]!.seq);
  });

  it('delivers every message stored after a subscription is ready, and says from where', async () => {
    const { subject } = await freshStream();
    const before = await bus.publish(subject('a.x'), text('before'), { msgId: 'before' });
    const seen: LiveMessage[] = [];
    const sub = bus.subscribe(subject('a.>'), (m) => seen.push(m));
    expect(await sub.ready).toBe(before.seq);
    for (let n = 0; n < 5; n++)
      await bus.publish(subject('a.x'), text(`after-${n}`), { msgId: `after-${n}` });
    await waitFor(() => seen.length === 5, { what: 'five messages' });
    sub.unsubscribe();
    expect(seen.map(read)).toEqual(['after-0', 'after-1', 'after-2', 'after-3', 'after-4']);
  });

  it('replays the stored messages of a subject within a sequence range, in order', async () => {
    const { subject } = await freshStream();
    const seqs: number[] = [];
    for (let n = 0; n < 6; n++) {
      const tenant = n % 2 === 0 ? 'a' : 'b';
      seqs.push((await bus.publish(subject(`${tenant}.x`), text(`${tenant}${n}`), { msgId: `m${n}` })).seq);
    }
    const all = await bus.replay(subject('a.>'), { afterSeq: 0, untilSeq: seqs[5]!, limit: 10 });
    expect(all.map(read)).toEqual(['a0', 'a2', 'a4']);
    const middle = await bus.replay(subject('a.>'), { afterSeq: seqs[0]!, untilSeq: seqs[3]!, limit: 10 });
    expect(middle.map((m) => [read(m), m.seq])).toEqual([['a2', seqs[2]]]);
    expect(await bus.replay(subject('a.>'), { afterSeq: seqs[5]!, untilSeq: seqs[5]!, limit: 10 })).toEqual(
      [],
    );
    await expect(
      bus.replay(subject('a.>'), { afterSeq: 0, untilSeq: seqs[5]!, limit: 2 }),
    ).rejects.toMatchObject({ reason: 'too-many' });
    await expect(
      bus.replay(subject('a.>'), { afterSeq: seqs[5]! + 100, untilSeq: seqs[5]! + 200, limit: 10 }),
    ).rejects.toMatchObject({ reason: 'ahead' });
  });

  it('refuses to replay messages the stream no longer keeps', async () => {
    const { subject } = await freshStream('limits', 1_000);
    await bus.publish(subject('a.x'), text('old'), { msgId: 'old' });
    const last = await bus.publish(subject('a.x'), text('older still'), { msgId: 'older' });
    const refusal = await waitFor(
      async () => {
        const outcome = await bus.replay(subject('a.>'), { afterSeq: 0, untilSeq: last.seq, limit: 10 }).then(
          () => undefined,
          (error: unknown) => error,
        );
        return outcome ?? false;
      },
      { what: 'the messages to expire' },
    );
    expect(refusal).toMatchObject({ reason: 'expired' });
  });
});
