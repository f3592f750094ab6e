import { describe, expect, it } from 'vitest';
import type { EventBus } from '../src/bus/bus.ts';
import { MemoryBus } from '../src/bus/memory.ts';
import { LiveUnavailableError, SlowSubscriberError } from '../src/errors.ts';
import { LiveHub } from '../src/live/live-hub.ts';
import { createLogger } from '../src/logger.ts';
import { Metrics } from '../src/metrics.ts';
import { waitFor } from './support/wait.ts';

const text = (s: string) => new TextEncoder().encode(s);

/** The in-process bus, with subscriptions that become ready only when the test says so. */
async function slowStartingBus() {
  const bus = new MemoryBus({ duplicateWindowMs: 60_000 }, createLogger('silent'));
  await bus.declareStreams([{ name: 'S', subjects: ['s.>'], retention: 'limits', maxAgeMs: 60_000 }]);
  const gates: (() => void)[] = [];
  let active = 0;
  const slow: EventBus = Object.assign(Object.create(bus) as EventBus, {
    subscribe(subject: string, handler: Parameters<EventBus['subscribe']>[1]) {
      const inner = bus.subscribe(subject, handler);
      active++;
      const ready = new Promise<void>((resolve) => gates.push(resolve)).then(() => inner.ready);
      return {
        ready,
        unsubscribe: () => {
          active--;
          inner.unsubscribe();
        },
      };
    },
  });
  return { bus, slow, openGates: () => gates.splice(0).forEach((g) => g()), active: () => active };
}

describe('the live hub', () => {
  it('keeps a feed for subscribers still waiting when another gives up on it', async () => {
    const { bus, slow, openGates, active } = await slowStartingBus();
    const hub = new LiveHub(
      {
        bus: slow,
        logger: createLogger('silent'),
        metrics: new Metrics({ logger: createLogger('silent') }, { role: 'all' }),
      },
      { bufferMessages: 10, bufferBytes: 1_000_000, replayLimit: 5, readyTimeoutMs: 100 },
    );
    const decode = (m: { data: Uint8Array }) => new TextDecoder().decode(m.data);
    const impatient = hub.open({ subject: 's.a', decode });
    await new Promise((resolve) => setTimeout(resolve, 50));
    const patient = hub.open({ subject: 's.a', decode });
    await expect(impatient).rejects.toBeInstanceOf(LiveUnavailableError);
    expect(hub.stats().feeds).toBe(1);
    openGates();
    const stream = await patient;
    await bus.publish('s.a', text('hello'), { msgId: '1' });
    expect((await stream.next()).value).toBe('hello');
    expect([hub.stats(), active()]).toEqual([{ feeds: 1, subscribers: 1 }, 1]);

    await stream.return!();
    expect([hub.stats(), active()]).toEqual([{ feeds: 0, subscribers: 0 }, 0]);
    const again = hub.open({ subject: 's.a', decode });
    openGates();
    await (
      await again
    ).return!();
    expect(active()).toBe(0);
  });

  it('ends a subscriber that falls behind with one error, holding nothing', async () => {
    const bus = new MemoryBus({ duplicateWindowMs: 60_000 }, createLogger('silent'));
    await bus.declareStreams([{ name: 'S', subjects: ['s.>'], retention: 'limits', maxAgeMs: 60_000 }]);
    const metrics = new Metrics({ logger: createLogger('silent') }, { role: 'all' });
    const hub = new LiveHub(
      { bus, logger: createLogger('silent'), metrics },
      { bufferMessages: 3, bufferBytes: 1_000_000, replayLimit: 1, readyTimeoutMs: 1_000 },
    );
    const stream = await hub.open({ subject: 's.a', decode: (m) => m.seq });
    for (let n = 0; n < 5; n++) await bus.publish('s.a', text('x'), { msgId: `m${n}` });
    await waitFor(() => hub.stats().feeds === 0, { what: 'the slow subscriber cut off' });
    expect(hub.stats()).toEqual({ feeds: 0, subscribers: 0 });
    // The three queued and the fourth that did not fit; the fifth found the subscriber gone.
    expect((await metrics.liveFramesDropped.get()).values[0]?.value).toBe(4);
    expect((await metrics.liveFramesSent.get()).values[0]?.value).toBe(0);
    const first = await stream.next();
    expect(first.value).toBeInstanceOf(SlowSubscriberError);
    expect(await stream.next()).toEqual({ done: true, value: undefined });
  });
});
