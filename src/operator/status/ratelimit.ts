/**
 * Events per pod and reason are rate-limited (a crash-looping app restores every
 * 10 s to 5 min; an event per restore is fine, a storm of them is not): at most
 * EVENT_BURST per EVENT_WINDOW_MS per key; what is held back is counted and said in
 * the next event that goes out. Keys are bounded: pod keys of managed pods x a closed
 * set of reasons, forgotten with the pod (forget()). Pure: the clock is injected.
 */
import type { PodEvent } from './events.js';

export const EVENT_BURST = 5;
export const EVENT_WINDOW_MS = 60_000;

interface Bucket {
  start: number;
  sent: number;
  held: number;
}

export class EventLimiter {
  private readonly buckets = new Map<string, Bucket>();
  suppressed = 0;

  constructor(private readonly now: () => number, private readonly burst = EVENT_BURST, private readonly windowMs = EVENT_WINDOW_MS) {}

  /** The event to send (its message saying how many were held back before it), or null to hold it. */
  admit(pod: string, e: PodEvent): PodEvent | null {
    const key = `${pod}\0${e.reason}`;
    const t = this.now();
    let b = this.buckets.get(key);
    if (!b || t - b.start >= this.windowMs) {
      b = { start: t, sent: 0, held: b?.held ?? 0 };
      this.buckets.set(key, b);
    }
    if (b.sent >= this.burst) {
      b.held++;
      this.suppressed++;
      return null;
    }
    b.sent++;
    if (b.held === 0) return e;
    const held = b.held;
    b.held = 0;
    return { ...e, message: `${e.message} (${held} similar event(s) not reported)` };
  }

  forget(pod: string): void {
    for (const k of this.buckets.keys()) if (k.startsWith(`${pod}\0`)) this.buckets.delete(k);
  }
}
