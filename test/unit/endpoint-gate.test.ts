import { describe, expect, it } from 'vitest';
import { EndpointGate } from '../../src/deliveries/isolation.ts';

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

  it('keeps an attempt in line while the worker itself runs late, and does not count the endpoint slow', async () => {
    let lag = 0;
    const gate = new EndpointGate(options, () => lag);
    await fill(gate, 'busy');
    lag = options.waitMs;
    const waiting = gate.acquire('busy');
    const outcome = await Promise.race([
      waiting,
      new Promise((resolve) => setTimeout(() => resolve('still waiting'), options.waitMs * 2)),
    ]);
    expect(outcome).toBe('still waiting');
    gate.release('busy', true, 5);
    expect(await waiting).toBe(true);
    // Not counted slow: its line is as long as the worker lets it be.
    lag = 0;
    const line = [gate.acquire('busy'), gate.acquire('busy')];
    gate.release('busy', true, 5);
    gate.release('busy', true, 5);
    expect(await Promise.all(line)).toEqual([true, true]);
  });

  it('counts an attempt slow only by what it took beyond the worker running late', async () => {
    const gate = new EndpointGate(options, () => 500);
    await fill(gate, 'late');
    gate.release('late', true, options.waitMs + 400);
    expect(await gate.acquire('late')).toBe(true);
    // Not slow: a second attempt may wait in line past the short line of a slow endpoint.
    const line = [gate.acquire('late'), gate.acquire('late')];
    gate.release('late', true, 5);
    gate.release('late', true, 5);
    expect(await Promise.all(line)).toEqual([true, true]);
    // Slow beyond the lateness: a slow endpoint's short line from now on.
    gate.release('late', true, options.waitMs + 600);
    expect(await gate.acquire('late')).toBe(true);
    const waiting = gate.acquire('late');
    expect(await gate.acquire('late')).toBe(false);
    gate.release('late', true, 5);
    expect(await waiting).toBe(true);
  });
});
