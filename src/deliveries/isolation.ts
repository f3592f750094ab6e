/**
 * Keeps one endpoint from slowing the others: at most `maxInFlight` attempts per endpoint at a
 * time, a line of attempts waiting for a slot, and a circuit breaker that stops attempts to an
 * endpoint for `openMs` after `failureThreshold` failures in a row. When the pause ends the circuit
 * is half-open: one trial attempt goes through, the others keep waiting; its success closes the
 * circuit, its failure opens it again. In-process state: each worker guards its own slots.
 *
 * The line keeps a busy endpoint's work flowing without a trip through the database. A fast
 * endpoint's line is as long as the worker lets it be: each wait is short. A slow one (within 10 s
 * of an attempt that failed or took longer than `waitMs`, or of someone waiting `waitMs` in its
 * line: flooded beyond what it answers) holds at most `maxWaiting` in line, and no attempt waits
 * longer than `waitMs`: past that the caller parks it, so a hanging or flooded endpoint holds a
 * bounded share of the worker.
 *
 * A busy worker is not a slow endpoint: when this process's own event loop runs late (`lagMs`),
 * an attempt counts slow only by what it took beyond that lateness, and an attempt that waited
 * `waitMs` in line while the worker ran a quarter of that late keeps waiting (parking it would
 * add work for a worker already behind), unless the endpoint is known slow.
 */
export interface IsolationOptions {
  maxInFlight: number;
  /** Attempts that may wait in line for a slow endpoint's slots (a small share of the worker's concurrency). */
  maxWaiting: number;
  /** The longest wait in line, and the attempt duration past which an endpoint counts as slow. */
  waitMs: number;
  failureThreshold: number;
  openMs: number;
}

export const defaultIsolation: IsolationOptions = {
  maxInFlight: 8,
  maxWaiting: 24,
  waitMs: 1_000,
  failureThreshold: 5,
  openMs: 30_000,
};

/** How long an endpoint counts as slow after a slow or failed attempt, or a wait too long. */
const SLOW_FOR_MS = 10_000;

interface Waiter {
  grant: (granted: boolean) => void;
  timer: NodeJS.Timeout;
}

interface EndpointState {
  inFlight: number;
  failures: number;
  /** 0 while closed; in the past once half-open, until an attempt succeeds or fails. */
  openUntil: number;
  /** Half-open: the trial attempt is running. */
  trial: boolean;
  /** Until when the endpoint counts as slow. */
  slowUntil: number;
  /** Attempts waiting for a slot: each is handed one as another finishes, or false if the circuit opens. */
  waiting: Waiter[];
}

export class EndpointGate {
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly options: IsolationOptions;

  get openMs(): number {
    return this.options.openMs;
  }

  private readonly lagMs: () => number;

  constructor(options: IsolationOptions = defaultIsolation, lagMs: () => number = () => 0) {
    this.options = options;
    this.lagMs = lagMs;
  }

  /**
   * When the endpoint's circuit is open: the time it lets a trial attempt through again (while a
   * half-open circuit's trial runs, soon: its outcome decides).
   */
  openUntil(endpoint: string, now = Date.now()): number | null {
    const state = this.endpoints.get(endpoint);
    if (!state) return null;
    if (state.openUntil > now) return state.openUntil;
    return state.trial ? now + this.options.waitMs : null;
  }

  /** Endpoints whose circuit is open, or half-open with its trial running: herald_circuits_open. */
  openCircuits(now = Date.now()): number {
    let open = 0;
    for (const state of this.endpoints.values()) if (state.openUntil > now || state.trial) open++;
    return open;
  }

  /** Takes a free slot at once; false when the caller would have to wait in line or park (`acquire`). */
  tryAcquire(endpoint: string): boolean {
    const state = this.state(endpoint);
    if (state.openUntil > 0 || state.inFlight >= this.options.maxInFlight) return false;
    state.inFlight++;
    return true;
  }

  /**
   * Takes a slot: at once, or after waiting in line behind the endpoint's running attempts.
   * False when the line is full too, or the circuit opened meanwhile: the caller parks the work.
   */
  async acquire(endpoint: string): Promise<boolean> {
    const state = this.state(endpoint);
    if (state.openUntil > 0) {
      // Half-open (or opened again meanwhile): only one trial.
      if (state.trial || state.openUntil > Date.now()) return false;
      state.trial = true;
      state.inFlight++;
      return true;
    }
    if (this.tryAcquire(endpoint)) return true;
    if (state.slowUntil > Date.now() && state.waiting.length >= this.options.maxWaiting) return false;
    return new Promise<boolean>((grant) => {
      const expire = () => {
        // The line is slow because the worker is: the endpoint is not to blame.
        if (this.lagMs() >= this.options.waitMs / 4 && state.slowUntil <= Date.now()) {
          waiter.timer = setTimeout(expire, this.options.waitMs);
          return;
        }
        // Nobody waits this long at an endpoint that keeps up with its work.
        state.slowUntil = Date.now() + SLOW_FOR_MS;
        state.waiting.splice(state.waiting.indexOf(waiter), 1);
        grant(false);
        this.forgetIfIdle(endpoint, state);
      };
      const waiter: Waiter = { grant, timer: setTimeout(expire, this.options.waitMs) };
      state.waiting.push(waiter);
    });
  }

  /** Gives the slot back and counts the result toward the breaker and the endpoint's speed. */
  release(endpoint: string, succeeded: boolean, durationMs: number, now = Date.now()): void {
    const state = this.state(endpoint);
    state.inFlight--;
    // Any outcome ends a half-open circuit's trial: a success closes it, a failure reopens it.
    state.trial = false;
    if (!succeeded || durationMs - this.lagMs() > this.options.waitMs) state.slowUntil = now + SLOW_FOR_MS;
    if (succeeded) {
      state.failures = 0;
      state.openUntil = 0;
    } else if (++state.failures >= this.options.failureThreshold) {
      state.openUntil = now + this.options.openMs;
      // Half-open after the pause: one more failure reopens at once.
      state.failures = this.options.failureThreshold - 1;
    }
    if (state.openUntil > now) {
      for (const waiter of state.waiting.splice(0)) {
        clearTimeout(waiter.timer);
        waiter.grant(false);
      }
    } else {
      const next = state.waiting.shift();
      if (next) {
        clearTimeout(next.timer);
        state.inFlight++;
        next.grant(true);
      }
    }
    this.forgetIfIdle(endpoint, state);
  }

  /** An endpoint with nothing running, waiting, counted, recently slow or open is forgotten. */
  private forgetIfIdle(endpoint: string, state: EndpointState): void {
    if (
      state.inFlight === 0 &&
      state.failures === 0 &&
      state.openUntil === 0 &&
      state.waiting.length === 0 &&
      state.slowUntil <= Date.now()
    )
      this.endpoints.delete(endpoint);
  }

  private state(endpoint: string): EndpointState {
    let state = this.endpoints.get(endpoint);
    if (!state) {
      state = { inFlight: 0, failures: 0, openUntil: 0, trial: false, slowUntil: 0, waiting: [] };
      this.endpoints.set(endpoint, state);
    }
    return state;
  }
}
