/**
 * Keeps one endpoint from slowing the others: at most `maxInFlight` attempts per endpoint at a
 * time, and a circuit breaker that stops attempts to an endpoint for `openMs` after
 * `failureThreshold` failures in a row. In-process state: each worker guards its own slots.
 */
export interface IsolationOptions {
  maxInFlight: number;
  failureThreshold: number;
  openMs: number;
}

export const defaultIsolation: IsolationOptions = { maxInFlight: 8, failureThreshold: 5, openMs: 30_000 };

interface EndpointState {
  inFlight: number;
  failures: number;
  openUntil: number;
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

  /** Takes a slot, or returns false when the endpoint already has maxInFlight attempts running. */
  tryAcquire(endpoint: string): boolean {
    const state = this.state(endpoint);
    if (state.inFlight >= this.options.maxInFlight) return false;
    state.inFlight++;
    return true;
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
    if (state.inFlight === 0 && state.failures === 0) this.endpoints.delete(endpoint);
  }

  private state(endpoint: string): EndpointState {
    let state = this.endpoints.get(endpoint);
    if (!state) {
      state = { inFlight: 0, failures: 0, openUntil: 0 };
      this.endpoints.set(endpoint, state);
    }
    return state;
  }
}
