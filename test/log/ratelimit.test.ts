/**
 * The log rate limiter (issue 7 item 3), on an injected clock: exact counts of
 * lines written and suppressed per window, per key; the log observer's use of it
 * (per container and reason, debug lines unlimited, long values cut).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/proc.js';
import { LOG_RATE_LIMIT, LOG_VALUE_MAX, RateLimiter, boundFields } from '../../src/log/ratelimit.js';
import { createLogger } from '../../src/log/log.js';
import { LOG_REASONS, logObserver, type LogReason } from '../../src/unit/observer.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}

describe('RateLimiter', () => {
  it('allows burst lines per interval, suppresses the rest, and reports them with the first line of a later window', () => {
    const c = clock();
    const rl = new RateLimiter({ burst: 3, intervalMs: 1_000 }, c.now);
    const verdicts = Array.from({ length: 10 }, () => rl.take('a'));
    expect(verdicts.map((v) => v.allowed)).toEqual([true, true, true, false, false, false, false, false, false, false]);
    expect(verdicts.every((v) => v.suppressedBefore === 0)).toBe(true);
    c.advance(999);
    expect(rl.take('a')).toEqual({ allowed: false, suppressedBefore: 0 });
    c.advance(1);
    expect(rl.take('a')).toEqual({ allowed: true, suppressedBefore: 8 });
    expect(rl.take('a')).toEqual({ allowed: true, suppressedBefore: 0 });
    // A quiet window reports nothing more.
    c.advance(5_000);
    expect(rl.take('a')).toEqual({ allowed: true, suppressedBefore: 0 });
  });

  it('keys are independent: one reason cannot silence another', () => {
    const c = clock();
    const rl = new RateLimiter({ burst: 2, intervalMs: 1_000 }, c.now);
    for (let i = 0; i < 50; i++) rl.take('app\0nul_byte');
    expect(rl.take('app\0too_large').allowed).toBe(true);
    expect(rl.take('web\0nul_byte').allowed).toBe(true);
  });

  it('burst 0 suppresses everything and still counts it', () => {
    const c = clock();
    const rl = new RateLimiter({ burst: 0, intervalMs: 1_000 }, c.now);
    expect(rl.take('a').allowed).toBe(false);
    expect(rl.take('a').allowed).toBe(false);
    c.advance(1_000);
    expect(rl.take('a')).toEqual({ allowed: false, suppressedBefore: 0 });
  });

  it('the default is 100 lines per 10 s', () => {
    expect(LOG_RATE_LIMIT).toEqual({ burst: 100, intervalMs: 10_000 });
  });
});

describe('boundFields', () => {
  it('cuts long strings, keeps short ones and other types as they are', () => {
    const long = 'x'.repeat(5_000);
    const out = boundFields({ value: long, short: 'ok', n: 5 });
    expect(out.value).toBe(`${'x'.repeat(LOG_VALUE_MAX)}... (5000 chars)`);
    expect(out.short).toBe('ok');
    expect(out.n).toBe(5);
    const same = { a: 'b' };
    expect(boundFields(same)).toBe(same);
  });
});

describe('logObserver with a rate limiter', () => {
  function setup(burst: number) {
    const c = clock();
    const lines: Array<Record<string, unknown>> = [];
    const log = createLogger({ write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, 'debug');
    const suppressed: Array<[string, LogReason]> = [];
    const obs = logObserver(log, { limiter: new RateLimiter({ burst, intervalMs: 1_000 }, c.now), suppressed: (ct, r) => suppressed.push([ct, r]) });
    return { c, lines, suppressed, obs };
  }

  it('limits per container and reason, counts each suppressed line, and says how many were suppressed', () => {
    const { c, lines, suppressed, obs } = setup(2);
    for (let i = 0; i < 5; i++) obs.rejected('app', 'nul_byte', 'embedded NUL', { pid: 1, uid: 0 });
    for (let i = 0; i < 3; i++) obs.rejected('web', 'nul_byte', 'embedded NUL', { pid: 1, uid: 0 });
    for (let i = 0; i < 4; i++) obs.dropped('app', 'invalid_message', 1, {});
    expect(lines.map((l) => `${l.container as string}:${l.reason as string}`)).toEqual([
      'app:nul_byte', 'app:nul_byte', 'web:nul_byte', 'web:nul_byte', 'app:invalid_message', 'app:invalid_message',
    ]);
    expect(suppressed).toEqual([
      ['app', 'nul_byte'], ['app', 'nul_byte'], ['app', 'nul_byte'], ['web', 'nul_byte'], ['app', 'invalid_message'], ['app', 'invalid_message'],
    ]);
    c.advance(1_000);
    obs.rejected('app', 'nul_byte', 'embedded NUL', { pid: 1, uid: 0 });
    expect(lines.at(-1)).toMatchObject({ msg: 'notify message dropped', container: 'app', reason: 'nul_byte', suppressedBefore: 3 });
  });

  it('debug lines (hang-ups, duplicates) are not limited', () => {
    const { lines, suppressed, obs } = setup(1);
    for (let i = 0; i < 10; i++) obs.dropped('app', 'hangup', 1, {});
    expect(lines).toHaveLength(10);
    expect(suppressed).toEqual([]);
  });

  it('attacker-chosen values are cut', () => {
    const { lines, obs } = setup(10);
    obs.warn('app', 'invalid ERRNO=, ignoring', { value: 'E'.repeat(4000) });
    expect(JSON.stringify(lines[0]).length).toBeLessThan(400);
  });

  it('LOG_REASONS is a closed set without duplicates', () => {
    expect(new Set(LOG_REASONS).size).toBe(LOG_REASONS.length);
    expect(LOG_REASONS).toContain('nul_byte');
    expect(LOG_REASONS).toContain('over_limit');
    expect(LOG_REASONS).toContain('warning');
  });
});

describe('the docs say what the code does', () => {
  const doc = (name: string): string => readFileSync(join(REPO, 'docs', name), 'utf8').replace(/\s+/g, ' ');
  const limit = `${LOG_RATE_LIMIT.burst} lines per ${LOG_RATE_LIMIT.intervalMs / 1000} s`;

  it(`restore-failure lines (protocol.md) and hostile input (security.md): ${limit} per container and reason, the count in suppressedBefore`, () => {
    for (const name of ['protocol.md', 'security.md']) {
      const text = doc(name);
      expect(text, name).toContain('`suppressedBefore`');
      expect(text, name).not.toMatch(/once a second|`suppressed`/);
    }
    expect(doc('protocol.md')).toContain(`rate-limited per container and reason to ${limit}`);
    expect(doc('security.md')).toContain(`at most ${limit} per container and reason`);
    // and the field the log observer writes is that one
    const lines: Record<string, unknown>[] = [];
    const c = clock();
    const obs = logObserver(createLogger({ write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) }, 'info'), {
      limiter: new RateLimiter({ burst: 1, intervalMs: 1_000 }, c.now),
    });
    obs.restoreFailed('app', 'busy', {});
    obs.restoreFailed('app', 'busy', {});
    c.advance(1_000);
    obs.restoreFailed('app', 'busy', {});
    expect(lines.map((l) => l.suppressedBefore)).toEqual([undefined, 1]);
  });
});
