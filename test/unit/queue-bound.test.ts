import { describe, expect, it } from 'vitest';
import { QueueBound } from '../../src/deliveries/queue-bound.ts';
import { createLogger } from '../../src/logger.ts';

/** A bound over a queue whose size the test sets, measured when the bound asks. */
function bound(limit: number) {
  const queue = { size: 0, measured: 0, down: false };
  const b = new QueueBound(
    async () => {
      queue.measured++;
      if (queue.down) throw new Error('no answer');
      return queue.size;
    },
    { limit, pollMs: 5 },
    createLogger('silent'),
  );
  return { b, queue };
}

describe('queue bound', () => {
  it('admits at once up to the bound, then makes callers wait until a measurement shows room', async () => {
    const { b, queue } = bound(10);
    expect(b.tryAdmit(6)).toBe(true);
    b.landed(6);
    expect(b.tryAdmit(4)).toBe(true);
    b.landed(4);
    queue.size = 10;
    expect(b.tryAdmit(1)).toBe(false);
    let admitted = false;
    const waiting = b.admit(3).then((ok) => (admitted = ok));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(admitted).toBe(false);
    queue.size = 7;
    await waiting;
    expect(admitted).toBe(true);
    expect(queue.measured).toBeGreaterThan(0);
  });

  it('counts what it admitted and has not yet landed on the stream, whatever the measurement says', async () => {
    const { b } = bound(10);
    expect(b.tryAdmit(8)).toBe(true);
    // Measured as empty while those 8 are on their way: they still count.
    let admitted = false;
    const waiting = b.admit(5).then((ok) => (admitted = ok));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(admitted).toBe(false);
    b.landed(8);
    await waiting;
    expect(admitted).toBe(true);
  });

  it('serves waiters in order, and lets an event larger than the bound into an empty queue', async () => {
    const { b, queue } = bound(4);
    expect(b.tryAdmit(4)).toBe(true);
    b.landed(4);
    queue.size = 4;
    const order: number[] = [];
    const first = b.admit(3).then(() => order.push(1));
    const second = b.admit(1).then(() => order.push(2));
    expect(b.tryAdmit(1)).toBe(false);
    queue.size = 0;
    await Promise.all([first, second]);
    expect(order).toEqual([1, 2]);
    const { b: empty } = bound(4);
    expect(empty.tryAdmit(9)).toBe(true);
  });

  it('lets an event larger than the bound in once the queue is half empty, not only once it is empty', async () => {
    const { b, queue } = bound(4);
    expect(b.tryAdmit(3)).toBe(true);
    b.landed(3);
    queue.size = 3;
    let admitted = false;
    const waiting = b.admit(9).then((ok) => (admitted = ok));
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(admitted).toBe(false);
    queue.size = 2;
    await waiting;
    expect(admitted).toBe(true);
  });

  it('holds to its estimate while the queue cannot be measured, and admits again once it can', async () => {
    const { b, queue } = bound(4);
    expect(b.tryAdmit(4)).toBe(true);
    b.landed(4);
    queue.down = true;
    let admitted = false;
    const waiting = b.admit(1).then((ok) => (admitted = ok));
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(admitted).toBe(false);
    // Tried again, backing off (250 ms, then 500 ms): not once every 5 ms.
    expect(queue.measured).toBeGreaterThanOrEqual(2);
    expect(queue.measured).toBeLessThanOrEqual(3);
    queue.down = false;
    await waiting;
    expect(admitted).toBe(true);
  });

  it('releases its waiters with false when closed', async () => {
    const { b, queue } = bound(1);
    expect(b.tryAdmit(1)).toBe(true);
    b.landed(1);
    queue.size = 1;
    const waiting = b.admit(1);
    b.close();
    expect(await waiting).toBe(false);
    expect(await b.admit(1)).toBe(false);
  });
});
