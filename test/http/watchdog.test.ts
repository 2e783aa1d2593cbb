/**
 * Readiness and liveness state machines (A2.1-A2.3, A2.10-A2.13, W5.1-W5.7) as the
 * probes see them: real notify messages parsed and applied to a real Container,
 * deadlines enforced by the Watchdog scheduler on an injected clock and timer.
 * Nothing sleeps: time moves when the test says so.
 */
import { describe, expect, it } from 'vitest';
import { applyMessage, type ApplyContext } from '../../src/notify/apply.js';
import { Container } from '../../src/unit/container.js';
import type { Observer } from '../../src/unit/observer.js';
import { Watchdog, rescheduleObserver } from '../../src/agent/watchdog.js';
import { DEFAULTS, type ContainerConfig } from '../../src/config/types.js';
import { createLogger, type Logger } from '../../src/log/log.js';
import { parseDatagram } from '../../src/notify/parse.js';
import type { StoreOps } from '../../src/store/store.js';

const MAIN_PID = 4242;

/** A clock and a single-slot timer the test advances by hand. */
class FakeTime {
  now = 1_000_000;
  timer: { fn: () => void; at: number; id: number } | null = null;
  armed = 0;
  private ids = 0;

  readonly timers = {
    set: (fn: () => void, ms: number): number => {
      if (this.timer !== null) throw new Error('a second timer armed while one is pending');
      this.armed++;
      this.timer = { fn, at: this.now + ms, id: ++this.ids };
      return this.ids;
    },
    clear: (id: number): void => {
      if (this.timer?.id === id) this.timer = null;
    },
  };

  /** Move the clock, firing the timer whenever it falls due (it re-arms itself). */
  advance(ms: number): void {
    const end = this.now + ms;
    let fired = 0;
    while (this.timer !== null && this.timer.at <= end) {
      if (++fired > 100) throw new Error('the watchdog timer keeps firing: a spin');
      const t = this.timer;
      this.timer = null;
      this.now = Math.max(this.now, t.at);
      t.fn();
    }
    this.now = end;
  }
}

interface Fixture {
  c: Container;
  time: FakeTime;
  wd: Watchdog<number>;
  failures: string[];
  kills: Array<[number, string]>;
  logs: Array<{ msg: string; [k: string]: unknown }>;
  send(text: string): void;
  newRun(): void;
}

const noStore: StoreOps = {
  sameFile: () => false,
  pollAdd: () => 0,
  pollDel: () => {},
  close: () => {},
  nextId: (() => {
    let n = 0;
    return () => ++n;
  })(),
};

function recordingObserver(failures: string[]): Observer {
  const none = (): void => {};
  return {
    accepted: none,
    rejected: none,
    dropped: none,
    stored: none,
    warn: none,
    stateChanged: none,
    mainPid: none,
    watchdogPing: none,
    watchdogFailed: (container, kind) => failures.push(`${container}:${kind}`),
    runStarted: none,
    restored: none,
    restoreFailed: none,
  };
}

function fixture(cfg: Partial<ContainerConfig> = {}, kill?: (pid: number, sig: string) => void): Fixture {
  const time = new FakeTime();
  const failures: string[] = [];
  const kills: Array<[number, string]> = [];
  const logs: Fixture['logs'] = [];
  const log: Logger = createLogger({ write: (l: string) => logs.push(JSON.parse(l) as Fixture['logs'][number]) }, 'debug');
  const c = new Container({ ...DEFAULTS, name: 'app', ...cfg }, noStore, time.now);
  c.run.mainPid = MAIN_PID;
  const obs = recordingObserver(failures);
  const wd = new Watchdog<number>({
    containers: () => [c],
    obs,
    log,
    nowMs: () => time.now,
    timers: time.timers,
    kill: (pid, sig) => {
      kills.push([pid, sig]);
      kill?.(pid, sig);
    },
  });
  wd.reschedule();
  const send = (text: string): void => {
    const parsed = parseDatagram({ data: Buffer.from(text), hasCreds: true, truncated: false, ctruncated: false, fdCount: 0 });
    if (!parsed.ok) throw new Error(parsed.detail);
    const ctx: ApplyContext = {
      procs: { cgroup: () => null, alive: () => true, self: () => 1, reaped: () => false, mountinfo: () => null },
      obs,
      nowMs: time.now,
      closeFd: () => {},
    };
    applyMessage(ctx, c, parsed.message, { pid: MAIN_PID, uid: 0, gid: 0 }, [], []);
    wd.reschedule(); // what the agent does after each applied message
  };
  const newRun = (): void => {
    c.startRun(time.now, MAIN_PID);
    wd.reschedule();
  };
  return { c, time, wd, failures, kills, logs, send, newRun };
}

const ready = (f: Fixture) => f.c.run.readiness();
const live = (f: Fixture) => f.c.run.liveness();

describe('readiness (/readyz)', () => {
  it('is 503 until READY=1, 200 after it', () => {
    const f = fixture();
    expect(ready(f)).toEqual({ ok: false, reason: 'no READY=1 in this run yet' });
    f.send('STATUS=warming up');
    expect(ready(f).ok).toBe(false);
    f.send('READY=1');
    expect(ready(f)).toEqual({ ok: true, reason: 'ready' });
  });

  it('stays ready while RELOADING=1 (documented: the app keeps serving), READY=1 ends the reload', () => {
    const f = fixture();
    f.send('READY=1');
    f.send('RELOADING=1');
    expect(f.c.run.phase).toBe('reloading');
    expect(ready(f)).toEqual({ ok: true, reason: 'reloading' });
    f.send('READY=1');
    expect(f.c.run.phase).toBe('ready');
  });

  it('STOPPING=1 makes it 503 for the rest of the run, even after READY=1 (A2.3)', () => {
    const f = fixture();
    f.send('READY=1');
    f.send('STOPPING=1');
    expect(ready(f)).toEqual({ ok: false, reason: 'STOPPING=1 received' });
    f.send('READY=1');
    expect(ready(f).ok).toBe(false);
    f.send('READY=1\nSTOPPING=1');
    expect(f.c.run.phase).toBe('stopping');
  });

  it('STOPPING=1 wins over READY=1 in the same datagram', () => {
    const f = fixture();
    f.send('READY=1\nSTOPPING=1');
    expect(ready(f).ok).toBe(false);
  });

  it('a new run starts not ready again', () => {
    const f = fixture();
    f.send('READY=1');
    f.newRun();
    expect(ready(f)).toEqual({ ok: false, reason: 'no READY=1 in this run yet' });
  });
});

describe('watchdog (/livez) with injected time', () => {
  it('READY=1 arms watchdogSec; pings keep it alive; when pings stop it fails at the deadline, once', () => {
    const f = fixture({ watchdogSec: 10 });
    expect(f.time.timer).toBeNull(); // W5.3: not armed before READY=1
    f.send('READY=1');
    expect(f.time.timer?.at).toBe(f.time.now + 10_000);
    for (let i = 0; i < 5; i++) {
      f.time.advance(9_000);
      f.send('WATCHDOG=1');
    }
    expect(live(f).ok).toBe(true);
    expect(f.failures).toEqual([]);
    f.time.advance(9_999);
    expect(live(f).ok).toBe(true);
    f.time.advance(1);
    expect(live(f)).toEqual({ ok: false, reason: 'watchdog timeout (limit 10000 ms)' });
    expect(f.failures).toEqual(['app:timeout']);
    f.time.advance(60_000);
    expect(f.failures).toEqual(['app:timeout']);
    expect(f.time.timer).toBeNull();
    expect(f.kills).toEqual([]); // watchdogSignal is off by default
  });

  it('WATCHDOG_USEC= overrides the timeout and re-arms from now; 0 disables (A2.12)', () => {
    const f = fixture({ watchdogSec: 10 });
    f.send('READY=1');
    f.time.advance(5_000);
    f.send('WATCHDOG_USEC=2000000');
    expect(f.time.timer?.at).toBe(f.time.now + 2_000);
    f.time.advance(1_500);
    f.send('WATCHDOG=1');
    expect(f.time.timer?.at).toBe(f.time.now + 2_000);
    f.send('WATCHDOG_USEC=0');
    expect(f.time.timer).toBeNull();
    f.time.advance(3_600_000);
    expect(live(f).ok).toBe(true);
    f.send('WATCHDOG_USEC=3000000');
    f.time.advance(3_000);
    expect(live(f)).toEqual({ ok: false, reason: 'watchdog timeout (limit 3000 ms)' });
  });

  it('WATCHDOG_USEC= turns on a watchdog that watchdogSec left off', () => {
    const f = fixture();
    f.send('READY=1');
    expect(f.time.timer).toBeNull();
    f.send('WATCHDOG_USEC=500000');
    f.time.advance(499);
    expect(live(f).ok).toBe(true);
    f.time.advance(1);
    expect(live(f).ok).toBe(false);
  });

  it('WATCHDOG=trigger fails at once, even with no watchdog configured (A2.11)', () => {
    const f = fixture();
    f.send('READY=1\nWATCHDOG=trigger');
    expect(live(f)).toEqual({ ok: false, reason: 'watchdog triggered by the application (WATCHDOG=trigger)' });
    expect(f.failures).toEqual(['app:trigger']);
  });

  it('EXTEND_TIMEOUT_USEC pushes the watchdog deadline out, never in (A2.13)', () => {
    const f = fixture({ watchdogSec: 10 });
    f.send('READY=1');
    f.time.advance(8_000);
    f.send('EXTEND_TIMEOUT_USEC=30000000');
    expect(f.time.timer?.at).toBe(f.time.now + 30_000);
    f.send('EXTEND_TIMEOUT_USEC=1000000');
    expect(f.time.timer?.at).toBe(f.time.now + 30_000);
    f.time.advance(29_999);
    expect(live(f).ok).toBe(true);
    f.time.advance(1);
    expect(live(f).ok).toBe(false);
  });

  it('a failed watchdog leaves no timer behind, whatever the app sends next', () => {
    const f = fixture({ watchdogSec: 10 });
    f.send('READY=1');
    f.send('WATCHDOG=trigger');
    expect(f.time.timer).toBeNull();
    f.time.advance(20_000);
    f.send('WATCHDOG=1');
    f.send('WATCHDOG_USEC=1000000');
    expect(f.time.timer).toBeNull();
    f.time.advance(20_000);
    expect(f.failures).toEqual(['app:trigger']);
  });

  it('never spins on a deadline a run does not act on', () => {
    const f = fixture();
    const run = f.c.run;
    // A run whose deadline is due but whose tick() reports nothing (defensive).
    run.nextDeadlineMs = () => f.time.now - 1;
    f.wd.reschedule();
    expect(() => f.time.advance(10)).not.toThrow();
    expect(f.time.timer).toBeNull();
  });

  it('a new run clears an expired watchdog and arms nothing until its READY=1', () => {
    const f = fixture({ watchdogSec: 1 });
    f.send('READY=1');
    f.time.advance(1_000);
    expect(live(f).ok).toBe(false);
    f.newRun();
    expect(live(f)).toEqual({ ok: true, reason: 'ok' });
    expect(f.time.timer).toBeNull();
    f.send('READY=1');
    f.time.advance(999);
    expect(live(f).ok).toBe(true);
  });

  it('the old run\'s timer does not fail the new run', () => {
    const f = fixture({ watchdogSec: 5 });
    f.send('READY=1');
    f.time.advance(4_000);
    f.newRun();
    f.time.advance(10_000);
    expect(live(f).ok).toBe(true);
    expect(f.failures).toEqual([]);
  });

  it('keeps one timer, and does not re-arm when the earliest deadline did not move', () => {
    const f = fixture({ watchdogSec: 10, timeoutStartSec: 60 });
    const before = f.time.armed;
    f.wd.reschedule();
    f.wd.reschedule();
    expect(f.time.armed).toBe(before);
    f.send('STATUS=x');
    expect(f.time.armed).toBe(before);
    f.send('READY=1');
    expect(f.time.armed).toBe(before + 1);
  });

  it('stop() disarms and ignores later reschedules', () => {
    const f = fixture({ watchdogSec: 1 });
    f.send('READY=1');
    f.wd.stop();
    expect(f.time.timer).toBeNull();
    f.send('WATCHDOG=1');
    expect(f.time.timer).toBeNull();
  });
});

describe('start timeout (W5.7) with injected time', () => {
  it('fails liveness when timeoutStartSec passes without READY=1', () => {
    const f = fixture({ timeoutStartSec: 90 });
    expect(f.time.timer?.at).toBe(f.time.now + 90_000);
    f.time.advance(89_999);
    expect(live(f).ok).toBe(true);
    f.time.advance(1);
    expect(live(f)).toEqual({ ok: false, reason: 'start timeout: no READY=1 within timeoutStartSec' });
    expect(f.failures).toEqual(['app:start_timeout']);
    // A late READY=1 makes it ready, but the failed start stays failed for this run.
    f.send('READY=1');
    expect(ready(f).ok).toBe(true);
    expect(live(f).ok).toBe(false);
  });

  it('READY=1 in time cancels it', () => {
    const f = fixture({ timeoutStartSec: 90 });
    f.time.advance(30_000);
    f.send('READY=1');
    expect(f.time.timer).toBeNull();
    f.time.advance(600_000);
    expect(live(f).ok).toBe(true);
  });

  it('EXTEND_TIMEOUT_USEC extends it, repeatedly', () => {
    const f = fixture({ timeoutStartSec: 10 });
    for (let i = 0; i < 4; i++) {
      f.time.advance(9_000);
      f.send('EXTEND_TIMEOUT_USEC=20000000');
    }
    expect(live(f).ok).toBe(true);
    f.time.advance(19_999);
    expect(live(f).ok).toBe(true);
    f.time.advance(1);
    expect(f.failures).toEqual(['app:start_timeout']);
  });

  it('watchdog and start timeout due together are both reported', () => {
    const f = fixture({ timeoutStartSec: 10 });
    f.send('WATCHDOG_USEC=10000000'); // W5.3 quirk: WATCHDOG before READY arms early
    f.time.advance(10_000);
    expect(f.failures.sort()).toEqual(['app:start_timeout', 'app:timeout']);
  });
});

describe('watchdogSignal (W5.5)', () => {
  it('sends SIGABRT to the main pid once per failed run, on expiry', () => {
    const f = fixture({ watchdogSec: 1, watchdogSignal: true });
    f.send('READY=1');
    f.time.advance(1_000);
    expect(f.kills).toEqual([[MAIN_PID, 'SIGABRT']]);
    f.send('STATUS=still here');
    f.time.advance(10_000);
    expect(f.kills).toHaveLength(1);
    f.newRun();
    f.send('READY=1');
    f.time.advance(1_000);
    expect(f.kills).toHaveLength(2);
  });

  it('and on WATCHDOG=trigger', () => {
    const f = fixture({ watchdogSignal: true });
    f.send('WATCHDOG=trigger');
    expect(f.kills).toEqual([[MAIN_PID, 'SIGABRT']]);
  });

  it('not on a start timeout (that is reported by /livez only)', () => {
    const f = fixture({ timeoutStartSec: 1, watchdogSignal: true });
    f.time.advance(1_000);
    expect(live(f).ok).toBe(false);
    expect(f.kills).toEqual([]);
  });

  it('EPERM is logged with what is missing (CAP_KILL)', () => {
    const f = fixture({ watchdogSignal: true }, () => {
      throw Object.assign(new Error('kill EPERM'), { code: 'EPERM' });
    });
    f.send('WATCHDOG=trigger');
    const line = f.logs.find((l) => l.msg.includes('CAP_KILL'));
    expect(line).toMatchObject({ level: 'error', container: 'app', pid: MAIN_PID, code: 'EPERM' });
  });

  it('never signals without a known main pid', () => {
    const f = fixture({ watchdogSignal: true });
    f.c.run.mainPid = null;
    f.send('WATCHDOG=trigger');
    expect(f.kills).toEqual([]);
    expect(f.logs.some((l) => l.msg === 'watchdog signal not sent: main pid unknown')).toBe(true);
  });
});

describe('rescheduleObserver', () => {
  it('coalesces a burst of events into one reschedule after the current turn', async () => {
    let n = 0;
    const o = rescheduleObserver({ reschedule: () => n++ });
    o.accepted('app');
    o.watchdogPing('app');
    o.stateChanged('app', 'ready');
    expect(n).toBe(0);
    await Promise.resolve();
    expect(n).toBe(1);
    o.runStarted('app', 1);
    await Promise.resolve();
    expect(n).toBe(2);
  });
});
