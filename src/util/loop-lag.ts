import { monitorEventLoopDelay } from 'node:perf_hooks';

/**
 * How late this process's event loop runs: the 99th percentile of its delay over the last second.
 * A busy process runs late, and everything it times of others (an endpoint's answer, a wait in
 * line) grows by as much.
 */
export class LoopLag {
  private readonly histogram = monitorEventLoopDelay({ resolution: 10 });
  private readonly timer: NodeJS.Timeout;
  private recentMs = 0;

  constructor() {
    this.histogram.enable();
    this.timer = setInterval(() => {
      this.recentMs = this.histogram.percentile(99) / 1e6;
      this.histogram.reset();
    }, 1_000).unref();
  }

  ms(): number {
    return this.recentMs;
  }

  stop(): void {
    clearInterval(this.timer);
    this.histogram.disable();
  }
}
