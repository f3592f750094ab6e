/**
 * Keeps one endpoint from slowing the others: at most `maxInFlight` attempts per endpoint at a
 * time, with at most `maxWaiting` more waiting in line for a slot (so a busy
 * endpoint's work flows on without a trip through the database, while a hanging one holds a
 * bounded share of the worker), and a circuit breaker that stops attempts to an endpoint for
 * `openMs` after `failureThreshold` failures in a row. In-process state: each worker guards its
 * own slots.
 */
export interface IsolationOptions {
  maxInFlight: number;
  /** Attempts that may wait in line for one endpoint's slots (keep it a small share of the worker's concurrency). */
  maxWaiting: number;
  failureThreshold: number;
  openMs: number;
}

export const defaultIsolation: IsolationOptions = {
  maxInFlight: 8,
  maxWaiting: 24,
  failureThreshold: 5,
  openMs: 30_000,
};

interface EndpointState {
  inFlight: number;
  failures: number;
  openUntil: number;
  /** Attempts waiting for a slot: each is handed one as another finishes, or false if the circuit opens. */
  waiting: ((granted: boolean) => void)[];
}

export class EndpointGate {
  private readonly endpoints = new Map<string, EndpointState>();
  private readonly options: IsolationOptions;

  get openMs(): number {
    return this.options.openMs;
  }

  constructor(options: IsolationOptions = defaultIsolation) {
    this.options = options;
  }

  /** When the endpoint's circuit is open: the time it lets a trial attempt through again. */
  openUntil(endpoint: string, now = Date.now()): number | null {
    const state = this.endpoints.get(endpoint);
    return state && state.openUntil > now ? state.openUntil : null;
  }

  /**
   * Takes a slot: at once, or after waiting in line behind the endpoint's running attempts.
   * False when the line is full too, or the circuit opened meanwhile: the caller parks the work.
   */
  async acquire(endpoint: string): Promise<boolean> {
    const state = this.state(endpoint);
    if (state.inFlight < this.options.maxInFlight) {
      state.inFlight++;
      return true;
    }
    if (state.waiting.length >= this.options.maxWaiting) return false;
    return new Promise<boolean>((resolve) => state.waiting.push(resolve));
  }

  /** Gives the slot back and counts the result toward the breaker. */
  release(endpoint: string, succeeded: boolean, now = Date.now()): void {
    const state = this.state(endpoint);
    state.inFlight--;
    if (succeeded) {
      state.failures = 0;
      state.openUntil = 0;
    } else if (++state.failures >= this.options.failureThreshold) {
      state.openUntil = now + this.options.openMs;
      // Half-open after the pause: one more failure reopens at once.
      state.failures = this.options.failureThreshold - 1;
    }
    if (state.openUntil > now) {
      for (const waiter of state.waiting.splice(0)) waiter(false);
    } else {
      const next = state.waiting.shift();
      if (next) {
        state.inFlight++;
        next(true);
      }
    }
    if (state.inFlight === 0 && state.failures === 0 && state.waiting.length === 0)
      this.endpoints.delete(endpoint);
  }

  private state(endpoint: string): EndpointState {
    let state = this.endpoints.get(endpoint);
    if (!state) {
      state = { inFlight: 0, failures: 0, openUntil: 0, waiting: [] };
      this.endpoints.set(endpoint, state);
    }
    return state;
  }
}
