import { describe, expect, it } from 'vitest';
import { Backoff, BACKOFF_BASE_MS, BACKOFF_CAP_MS, jitteredDelayMs } from '../../../src/operator/kube/backoff.js';

/** A random source that always returns x (just below 1 gives the ceiling). */
const fixed = (x: number) => () => x;
const MAX_RANDOM = 1 - Number.EPSILON;

describe('Backoff', () => {
  it('doubles the ceiling per failure from 0.5 s and caps it at 30 s', () => {
    const b = new Backoff({ random: fixed(MAX_RANDOM) });
    const delays = Array.from({ length: 10 }, () => b.next());
    // floor(ceiling * (1 - eps)) is ceiling - 1 for these integers.
    expect(delays).toEqual([500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000, 30000].map((d) => d - 1));
    expect(BACKOFF_BASE_MS).toBe(500);
    expect(BACKOFF_CAP_MS).toBe(30_000);
  });

  it('is full jitter: the delay is random() times the ceiling, down to zero', () => {
    const values = [0, 0.5, 0.25];
    const b = new Backoff({ random: () => values.shift()! });
    expect([b.next(), b.next(), b.next()]).toEqual([0, 500, 500]);
  });

  it('spreads delays over the whole window with the real random source', () => {
    const samples = Array.from({ length: 2000 }, () => {
      const b = new Backoff();
      for (let i = 0; i < 4; i++) b.next();
      return b.next(); // ceiling 8000
    });
    expect(Math.min(...samples)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...samples)).toBeLessThan(8000);
    const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
    expect(mean).toBeGreaterThan(3500);
    expect(mean).toBeLessThan(4500);
  });

  it('reset() starts over at the base delay', () => {
    const b = new Backoff({ random: fixed(MAX_RANDOM) });
    b.next();
    b.next();
    b.next();
    b.reset();
    expect(b.attempt).toBe(0);
    expect(b.next()).toBe(499);
  });

  it('succeeded() resets only a success that lasted stableMs before the next failure', () => {
    let t = 0;
    const b = new Backoff({ random: fixed(MAX_RANDOM), now: () => t, stableMs: 10_000 });
    b.next();
    b.next();
    b.next(); // ceiling now 4000
    b.succeeded();
    t += 9_999; // failed again too soon: a flapping connection keeps growing
    expect(b.next()).toBe(3999);
    b.succeeded();
    t += 5_000;
    b.succeeded(); // a later success does not move the start of the healthy period
    t += 5_000;
    expect(b.next()).toBe(499);
    expect(b.attempt).toBe(1);
  });

  it('does not overflow after very many failures', () => {
    const b = new Backoff({ random: fixed(MAX_RANDOM) });
    for (let i = 0; i < 10_000; i++) b.next();
    expect(b.next()).toBe(29_999);
    expect(b.ceiling()).toBe(30_000);
  });

  it('rejects nonsensical limits', () => {
    expect(() => new Backoff({ baseMs: 0 })).toThrow(RangeError);
    expect(() => new Backoff({ baseMs: 100, capMs: 50 })).toThrow(RangeError);
    expect(() => new Backoff({ stableMs: -1 })).toThrow(RangeError);
  });
});

describe('jitteredDelayMs (callers that count their own failures)', () => {
  it('doubles the ceiling from the base to the cap, jitter below it, never 0', () => {
    expect(jitteredDelayMs(1, () => 0.999999)).toBe(BACKOFF_BASE_MS);
    expect(jitteredDelayMs(3, () => 0.999999)).toBe(4 * BACKOFF_BASE_MS);
    expect(jitteredDelayMs(50, () => 0.999999)).toBe(BACKOFF_CAP_MS);
    expect(jitteredDelayMs(50, () => 0)).toBe(1);
  });
});
