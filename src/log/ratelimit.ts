/**
 * Log rate limiting, as systemd's journal does per service (RateLimitIntervalSec=,
 * RateLimitBurst=): per key, at most `burst` lines per `intervalMs` window; the
 * rest are suppressed and counted, and the first line of a later window carries
 * how many were suppressed before it. Pure: the clock is injected.
 *
 * Keys must come from a bounded set (container name x closed reason), so the map
 * is bounded by construction: no attacker-chosen text becomes a key.
 */
export interface RateLimit {
  burst: number;
  intervalMs: number;
}

/**
 * 100 lines per 10 s per container and reason: a hostile flood of 1.2 M datagrams
 * writes ~10 lines per second per reason instead of 292 MiB, while an operator
 * still sees the first 100 of a burst in full. (journald: 10,000 per 30 s per
 * service, but for the whole service; here one reason cannot silence another.)
 */
export const LOG_RATE_LIMIT: RateLimit = { burst: 100, intervalMs: 10_000 };

export interface Verdict {
  /** Write this line. */
  allowed: boolean;
  /** Lines of this key suppressed before this one (in earlier windows): report them with it. */
  suppressedBefore: number;
}

interface Window {
  start: number;
  used: number;
  suppressed: number;
}

export class RateLimiter {
  private readonly windows = new Map<string, Window>();

  constructor(
    private readonly limit: RateLimit,
    /** Monotonic milliseconds. */
    private readonly now: () => number,
  ) {}

  take(key: string): Verdict {
    const t = this.now();
    const w = this.windows.get(key);
    if (w === undefined || t - w.start >= this.limit.intervalMs) {
      const before = w?.suppressed ?? 0;
      if (this.limit.burst <= 0) {
        this.windows.set(key, { start: t, used: 0, suppressed: before + 1 });
        return { allowed: false, suppressedBefore: 0 };
      }
      this.windows.set(key, { start: t, used: 1, suppressed: 0 });
      return { allowed: true, suppressedBefore: before };
    }
    if (w.used < this.limit.burst) {
      w.used++;
      return { allowed: true, suppressedBefore: 0 };
    }
    w.suppressed++;
    return { allowed: false, suppressedBefore: 0 };
  }
}

/** Longest string kept in a log field: attacker-chosen values (ERRNO=, MAINPID=, FDNAME=...) are cut here. */
export const LOG_VALUE_MAX = 128;

/** Fields with every long string cut to LOG_VALUE_MAX characters, noting the original length. */
export function boundFields<F extends Record<string, unknown>>(fields: F): F {
  let out: Record<string, unknown> | null = null;
  for (const [k, v] of Object.entries(fields)) {
    if (typeof v === 'string' && v.length > LOG_VALUE_MAX) {
      out ??= { ...fields };
      out[k] = `${v.slice(0, LOG_VALUE_MAX)}... (${v.length} chars)`;
    }
  }
  return (out ?? fields) as F;
}
