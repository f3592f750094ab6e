import { Webhook } from 'standardwebhooks';
import { validate, version } from 'uuid';
import { describe, expect, it, vi } from 'vitest';
import {
  DEFAULT_SCHEDULE_MS,
  defaultRetryPolicy,
  delayAfter,
  retryAfterMs,
} from '../src/deliveries/outcome.ts';
import { EndpointGate } from '../src/deliveries/isolation.ts';
import { signatureHeaders } from '../src/deliveries/signing.ts';
import { batchLoader } from '../src/db/batch-loader.ts';
import { firstIdAt, newId } from '../src/db/ids.ts';
import { newWebhookSecret } from '../src/webhooks/webhook-secret.ts';
import { waitFor } from './support/wait.ts';

describe('signing', () => {
  const body = JSON.stringify({ id: 'evt', type: 'invoices.invoice.paid', current: { id: 1 } });

  it('produces headers any Standard Webhooks library verifies', () => {
    const secret = newWebhookSecret();
    const headers = signatureHeaders([secret], 'msg_1', new Date(), body);
    expect(headers['webhook-id']).toBe('msg_1');
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(new Webhook(secret).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(() => new Webhook(newWebhookSecret()).verify(body, { ...headers })).toThrow();
    expect(() => new Webhook(secret).verify(`${body} `, { ...headers })).toThrow();
  });

  it('signs with the old and the new secret during a rotation', () => {
    const [before, after] = [newWebhookSecret(), newWebhookSecret()];
    const headers = signatureHeaders([after, before], 'msg_2', new Date(), body);
    expect(headers['webhook-signature'].split(' ')).toHaveLength(2);
    expect(new Webhook(before).verify(body, { ...headers })).toEqual(JSON.parse(body));
    expect(new Webhook(after).verify(body, { ...headers })).toEqual(JSON.parse(body));
  });
});

describe('retry schedule', () => {
  it('follows the schedule with bounded jitter, then gives up', () => {
    expect(DEFAULT_SCHEDULE_MS).toEqual([
      0, 5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000,
    ]);
    expect(delayAfter(1, defaultRetryPolicy, () => 0.5)).toBe(5_000);
    expect(delayAfter(1, defaultRetryPolicy, () => 0)).toBe(4_000);
    expect(delayAfter(1, defaultRetryPolicy, () => 1)).toBe(6_000);
    expect(delayAfter(7, defaultRetryPolicy, () => 0.5)).toBe(36_000_000);
    expect(delayAfter(8, defaultRetryPolicy)).toBeNull();
  });

  it('reads Retry-After as seconds or a date, within bounds', () => {
    const now = Date.parse('2026-11-23T10:00:00Z');
    expect(retryAfterMs('120', defaultRetryPolicy, now)).toBe(120_000);
    expect(retryAfterMs('Mon, 23 Nov 2026 10:05:00 GMT', defaultRetryPolicy, now)).toBe(300_000);
    expect(retryAfterMs('0', defaultRetryPolicy, now)).toBe(1_000);
    expect(retryAfterMs('999999999', defaultRetryPolicy, now)).toBe(36_000_000);
    expect(retryAfterMs('soon', defaultRetryPolicy, now)).toBeNull();
    expect(retryAfterMs(undefined, defaultRetryPolicy, now)).toBeNull();
  });
});

describe('endpoint gate', () => {
  const options = { maxInFlight: 2, maxWaiting: 1, waitMs: 200, failureThreshold: 5, openMs: 30_000 };
  const fill = async (gate: EndpointGate, endpoint: string) => {
    expect(await gate.acquire(endpoint)).toBe(true);
    expect(await gate.acquire(endpoint)).toBe(true);
  };

  it('lets a fast endpoint queue past the slow-endpoint line, in order', async () => {
    const gate = new EndpointGate(options);
    await fill(gate, 'fast');
    const order: number[] = [];
    const line = [1, 2, 3].map((n) => gate.acquire('fast').then((granted) => granted && order.push(n)));
    for (let i = 0; i < 3; i++) gate.release('fast', true, 5);
    await Promise.all(line);
    expect(order).toEqual([1, 2, 3]);
  });

  it('hands out a free slot at once, and none past the cap, to a waiting line or through an open circuit', async () => {
    const gate = new EndpointGate({ ...options, failureThreshold: 1 });
    expect(gate.tryAcquire('busy')).toBe(true);
    expect(gate.tryAcquire('busy')).toBe(true);
    expect(gate.tryAcquire('busy')).toBe(false);
    const waiting = gate.acquire('busy');
    gate.release('busy', true, 5);
    // The freed slot went to the attempt in line, not to whoever asks next.
    expect(await waiting).toBe(true);
    expect(gate.tryAcquire('busy')).toBe(false);

    expect(gate.tryAcquire('down')).toBe(true);
    gate.release('down', false, 5);
    expect(gate.tryAcquire('down')).toBe(false);
  });

  it('keeps a slow endpoint to its short line', async () => {
    const gate = new EndpointGate(options);
    await fill(gate, 'slow');
    gate.release('slow', true, 5_000);
    expect(await gate.acquire('slow')).toBe(true);
    const waiting = gate.acquire('slow');
    expect(await gate.acquire('slow')).toBe(false);
    gate.release('slow', true, 5);
    expect(await waiting).toBe(true);
  });

  it('sends back an attempt that waited too long, and counts the endpoint slow from then on', async () => {
    const gate = new EndpointGate(options);
    await fill(gate, 'hanging');
    const started = performance.now();
    const [first, second] = [gate.acquire('hanging'), gate.acquire('hanging')];
    expect(await first).toBe(false);
    expect(await second).toBe(false);
    expect(performance.now() - started).toBeGreaterThanOrEqual(options.waitMs - 5);
    const third = gate.acquire('hanging');
    expect(await gate.acquire('hanging')).toBe(false);
    expect(await third).toBe(false);
  });

  it('keeps a flooded endpoint to its short line even after a fast answer', async () => {
    const gate = new EndpointGate(options);
    await fill(gate, 'flooded');
    expect(await gate.acquire('flooded')).toBe(false);
    gate.release('flooded', true, 5);
    expect(await gate.acquire('flooded')).toBe(true);
    const waiting = gate.acquire('flooded');
    // Refused at once, not after waiting in an open line.
    expect(await Promise.race([gate.acquire('flooded'), Promise.resolve('waits')])).toBe(false);
    gate.release('flooded', true, 5);
    expect(await waiting).toBe(true);
  });

  it('keeps a circuit opened by a single failure open for its whole pause', async () => {
    const gate = new EndpointGate({ ...options, failureThreshold: 1, openMs: 60_000 });
    expect(await gate.acquire('down')).toBe(true);
    // Failed 20 s ago: no longer counted slow, still within the pause.
    const failedAt = Date.now() - 20_000;
    gate.release('down', false, 5, failedAt);
    expect(gate.openUntil('down')).toBe(failedAt + 60_000);
    expect(await gate.acquire('down')).toBe(false);
  });

  it('lets one trial through a half-open circuit; its outcome closes or reopens it', async () => {
    const gate = new EndpointGate({ ...options, failureThreshold: 1, openMs: 1_000 });
    expect(await gate.acquire('flaky')).toBe(true);
    gate.release('flaky', false, 5, Date.now() - 5_000);
    expect(gate.openUntil('flaky')).toBeNull();
    expect(await gate.acquire('flaky')).toBe(true);
    expect(await gate.acquire('flaky')).toBe(false);
    expect(gate.openUntil('flaky')).not.toBeNull();
    gate.release('flaky', false, 5);
    expect(gate.openUntil('flaky')).toBeGreaterThan(Date.now());
    expect(await gate.acquire('flaky')).toBe(false);

    const recovering = new EndpointGate({ ...options, failureThreshold: 1, openMs: 1_000 });
    expect(await recovering.acquire('flaky')).toBe(true);
    recovering.release('flaky', false, 5, Date.now() - 5_000);
    expect(await recovering.acquire('flaky')).toBe(true);
    recovering.release('flaky', true, 5);
    expect(recovering.openUntil('flaky')).toBeNull();
    await fill(recovering, 'flaky');
  });
});

describe('ids', () => {
  it('are distinct UUIDv7s across many refills of the random pool, and sort by their millisecond', () => {
    const before = newId();
    const at = new Date(Date.now() + 2);
    while (Date.now() < at.getTime()) newId();
    const ids = Array.from({ length: 2_000 }, newId);
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids) expect(validate(id) && version(id)).toBe(7);
    const bound = firstIdAt(at);
    expect(before < bound).toBe(true);
    expect(ids.every((id) => id >= bound)).toBe(true);
  });
});

describe('batch loader', () => {
  it('sends a lone call at once, gathers the calls of the next interval into one batch, and is prompt again when idle', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setImmediate', 'performance'] });
    try {
      const batches: { keys: number[]; at: number }[] = [];
      const load = batchLoader<number, number>(
        async (keys) => {
          batches.push({ keys: [...keys], at: performance.now() });
          return keys.map((k) => k * 2);
        },
        { maxBatchSize: 100, concurrency: 1, intervalMs: 50 },
      );
      const t0 = performance.now();
      const first = load.load(1);
      await vi.advanceTimersByTimeAsync(1);
      expect(await first).toBe(2);

      const next: Promise<number>[] = [];
      for (const key of [2, 3, 4]) {
        next.push(load.load(key));
        await vi.advanceTimersByTimeAsync(10);
      }
      await vi.advanceTimersByTimeAsync(50);
      expect(await Promise.all(next)).toEqual([4, 6, 8]);

      await vi.advanceTimersByTimeAsync(200);
      const idle = load.load(5);
      await vi.advanceTimersByTimeAsync(1);
      expect(await idle).toBe(10);

      expect(batches).toEqual([
        { keys: [1], at: t0 },
        { keys: [2, 3, 4], at: t0 + 50 },
        { keys: [5], at: t0 + 281 },
      ]);
    } finally {
      vi.useRealTimers();
    }
  });

  it('starts the batches that waited for a running one oldest first', async () => {
    const started: number[][] = [];
    let finishFirst!: () => void;
    const firstRuns = new Promise<void>((resolve) => (finishFirst = resolve));
    const load = batchLoader<number, number>(
      async (keys) => {
        started.push([...keys]);
        if (keys.includes(1)) await firstRuns;
        return [...keys];
      },
      { maxBatchSize: 2, concurrency: 1 },
    );
    const first = load.load(1);
    await waitFor(() => started.length === 1, { what: 'the first batch to start' });
    const rest = [2, 3, 4, 5, 6].map((key) => load.load(key));
    finishFirst();
    await Promise.all([first, ...rest]);
    expect(started).toEqual([[1], [2, 3], [4, 5], [6]]);
  });
});
