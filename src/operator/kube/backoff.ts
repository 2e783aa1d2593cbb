/**
 * Capped exponential back-off with full jitter (AWS Architecture Blog, "Exponential
 * Backoff And Jitter"): the n-th retry waits a uniform random time in
 * [0, min(cap, base * 2^n)). Full jitter spreads the retries of many clients (two
 * operator replicas, many watches) so a recovering API server is not hit by a
 * synchronized wave. Pure: random and the clock are injected.
 *
 * "Reset on success" has a guard: a connection that succeeds and then fails at once,
 * over and over (a watch that lists fine and is refused on every watch request), must
 * not retry at the base delay forever. `succeeded()` only resets the count once the
 * success has lasted `stableMs`; `reset()` resets at once.
 */

/** First retry waits up to 0.5 s: quick enough that a blip costs nothing visible. */
export const BACKOFF_BASE_MS = 500;
/** Never wait more than 30 s: an operator must catch up soon after the API returns (client-node 2.x: 30 s). */
export const BACKOFF_CAP_MS = 30_000;
/** A success counts once it has lasted 10 s (a watch that stays up, a lease renewed twice). */
export const BACKOFF_STABLE_MS = 10_000;
/** 2^MAX_EXPONENT * base is far above any cap; the count stops growing there. */
const MAX_EXPONENT = 30;

export interface BackoffOptions {
  baseMs?: number;
  capMs?: number;
  stableMs?: number;
  /** Uniform in [0, 1), as Math.random. */
  random?: () => number;
  /** Monotonic milliseconds. */
  now?: () => number;
}

/**
 * The delay before retry number `failures` (1 = the first retry) of a caller that
 * keeps its own count (the agent pollers, the work queue): full jitter under the
 * same doubling ceiling Backoff uses. Pure.
 */
export function jitteredDelayMs(failures: number, random: () => number, baseMs = BACKOFF_BASE_MS, capMs = BACKOFF_CAP_MS): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(Math.max(failures - 1, 0), MAX_EXPONENT));
  return Math.floor(random() * ceiling) + 1;
}

export class Backoff {
  private readonly baseMs: number;
  private readonly capMs: number;
  private readonly stableMs: number;
  private readonly random: () => number;
  private readonly now: () => number;
  private failures = 0;
  private successAt: number | undefined;

  constructor(opts: BackoffOptions = {}) {
    this.baseMs = opts.baseMs ?? BACKOFF_BASE_MS;
    this.capMs = opts.capMs ?? BACKOFF_CAP_MS;
    this.stableMs = opts.stableMs ?? BACKOFF_STABLE_MS;
    this.random = opts.random ?? Math.random;
    this.now = opts.now ?? (() => performance.now());
    if (!(this.baseMs > 0) || !(this.capMs >= this.baseMs) || !(this.stableMs >= 0)) {
      throw new RangeError(`backoff: need 0 < baseMs <= capMs and stableMs >= 0 (got ${this.baseMs}, ${this.capMs}, ${this.stableMs})`);
    }
  }

  /** Failures counted since the last reset. */
  get attempt(): number {
    return this.failures;
  }

  /** The ceiling of the next delay (before jitter): for logs and tests. */
  ceiling(): number {
    return Math.min(this.capMs, this.baseMs * 2 ** Math.min(this.failures, MAX_EXPONENT));
  }

  /** A failure happened: the delay to wait before the next attempt, in ms. */
  next(): number {
    if (this.successAt !== undefined && this.now() - this.successAt >= this.stableMs) this.failures = 0;
    this.successAt = undefined;
    const delay = Math.floor(this.random() * this.ceiling());
    this.failures = Math.min(this.failures + 1, MAX_EXPONENT);
    return delay;
  }

  /** The attempt worked; the count resets at the next failure if the success lasted stableMs. */
  succeeded(): void {
    this.successAt ??= this.now();
  }

  /** Forget all failures now. */
  reset(): void {
    this.failures = 0;
    this.successAt = undefined;
  }
}
