// Run (one start of a container's main process) and Container: pure state with time
// passed in (spec §2 A2.1-A2.13, §4 N4.1/N4.6, §5 W5.1-W5.3, W5.7).
import { describe, expect, it } from 'vitest';
import { Container } from '../../src/unit/container.js';
import { Run } from '../../src/unit/run.js';
import { DEFAULTS, type ContainerConfig } from '../../src/config/types.js';
import type { FdStat, StoreOps } from '../../src/store/store.js';

/** Run(id, nowMs, watchdogSec, timeoutStartSec). */
function run(watchdogSec = 0, timeoutStartSec = 0, nowMs = 0): Run {
  return new Run(1, nowMs, watchdogSec, timeoutStartSec);
}

describe('W5.1 effective watchdog timeout', () => {
  it('W5.1: 0 means off', () => {
    expect(run(0).watchdogMs()).toBeNull();
  });

  it('W5.1: the configured value in ms', () => {
    expect(run(10).watchdogMs()).toBe(10_000);
    expect(run(0.5).watchdogMs()).toBe(500);
  });

  it('A2.12: the override wins over the configured value', () => {
    const r = run(10);
    r.watchdogUsecOverride = 2_500_000n;
    expect(r.watchdogMs()).toBe(2500);
    r.watchdogUsecOverride = 1n;
    expect(r.watchdogMs()).toBe(0.001);
  });

  it('A2.12: an override of 0 or UINT64_MAX disables it', () => {
    const r = run(10);
    r.watchdogUsecOverride = 0n;
    expect(r.watchdogMs()).toBeNull();
    r.watchdogUsecOverride = 0xffffffffffffffffn;
    expect(r.watchdogMs()).toBeNull();
  });

  it('A2.12: an override enables the watchdog when none is configured', () => {
    const r = run(0);
    r.watchdogUsecOverride = 3_000_000n;
    expect(r.watchdogMs()).toBe(3000);
  });
});

describe('W5.3 arming and expiry', () => {
  it('W5.3: not armed before READY=1', () => {
    const r = run(5);
    expect(r.watchdogDeadlineMs).toBeNull();
    expect(r.tick(1e9)).toBeNull();
  });

  it('W5.3: READY=1 arms from now; WATCHDOG=1 re-arms from now', () => {
    const r = run(5);
    r.ready(1000);
    expect(r.watchdogDeadlineMs).toBe(6000);
    r.ping(4000);
    expect(r.lastPingMs).toBe(4000);
    expect(r.watchdogDeadlineMs).toBe(9000);
  });

  it('W5.3 quirk: WATCHDOG=1 before READY=1 arms the timer early', () => {
    const r = run(5);
    r.ping(100);
    expect(r.watchdogDeadlineMs).toBe(5100);
  });

  it('W5.5: expiry is reported exactly once and fails liveness', () => {
    const r = run(5);
    r.ready(0);
    expect(r.tick(4999)).toBeNull();
    expect(r.liveness().ok).toBe(true);
    expect(r.tick(5000)).toBe('watchdog');
    expect(r.liveness()).toEqual({ ok: false, reason: expect.stringMatching(/watchdog timeout/) });
    expect(r.tick(5001)).toBeNull();
    r.ping(6000);
    expect(r.tick(20_000)).toBeNull();
    expect(r.liveness().ok).toBe(false);
  });

  it('A2.11: trigger fails liveness at once and suppresses a later timeout report', () => {
    const r = run(5);
    r.ready(0);
    r.trigger();
    expect(r.liveness()).toEqual({ ok: false, reason: expect.stringMatching(/WATCHDOG=trigger/) });
    expect(r.tick(10_000)).toBeNull();
  });

  it('W5.3: exit stops every timer and nothing fires afterwards', () => {
    const r = run(5, 10);
    r.ready(0);
    r.exit();
    expect(r.phase).toBe('exited');
    expect(r.nextDeadlineMs()).toBeNull();
    expect(r.tick(1e9)).toBeNull();
  });
});

describe('W5.7 start timeout', () => {
  it('W5.7: 0 means no start deadline', () => {
    expect(run(0, 0).startDeadlineMs).toBeNull();
  });

  it('W5.7: the deadline is start + timeoutStartSec; expiry is reported once', () => {
    const r = run(0, 10, 500);
    expect(r.startDeadlineMs).toBe(10_500);
    expect(r.tick(10_499)).toBeNull();
    expect(r.tick(10_500)).toBe('start_timeout');
    expect(r.tick(20_000)).toBeNull();
    expect(r.liveness()).toEqual({ ok: false, reason: expect.stringMatching(/start timeout/) });
  });

  it('A2.1: READY=1 in time clears the start deadline', () => {
    const r = run(0, 10);
    r.ready(2000);
    expect(r.startDeadlineMs).toBeNull();
    expect(r.tick(1e9)).toBeNull();
    expect(r.liveness().ok).toBe(true);
  });

  it('nextDeadlineMs is the earliest pending deadline', () => {
    const r = run(5, 10);
    expect(r.nextDeadlineMs()).toBe(10_000);
    r.ping(1000);
    expect(r.nextDeadlineMs()).toBe(6000);
  });
});

describe('A2.13 extend', () => {
  it('A2.13: pushes both deadlines to at least now + N, never shortens', () => {
    const r = run(5, 10);
    r.ping(0);
    r.extend(1000, 20_000_000n);
    expect(r.startDeadlineMs).toBe(21_000);
    expect(r.watchdogDeadlineMs).toBe(21_000);
    r.extend(2000, 1_000_000n);
    expect(r.startDeadlineMs).toBe(21_000);
    expect(r.watchdogDeadlineMs).toBe(21_000);
  });

  it('A2.13: only pushes the deadline that is earlier', () => {
    const r = run(5, 60);
    r.ping(0);
    r.extend(0, 10_000_000n);
    expect(r.watchdogDeadlineMs).toBe(10_000);
    expect(r.startDeadlineMs).toBe(60_000);
  });

  it('A2.13: 0 and no timer have no effect', () => {
    const r = run(0, 10);
    r.extend(9000, 0n);
    expect(r.startDeadlineMs).toBe(10_000);
    const idle = run(0, 0);
    idle.extend(0, 5_000_000n);
    expect(idle.nextDeadlineMs()).toBeNull();
  });

  it('A2.13: an extended deadline still expires when not repeated', () => {
    const r = run(0, 10);
    r.extend(5000, 10_000_000n);
    expect(r.tick(14_999)).toBeNull();
    expect(r.tick(15_000)).toBe('start_timeout');
  });
});

describe('A2.1-A2.3 phases and readiness', () => {
  it('W5.10: starting is not ready', () => {
    expect(run().readiness()).toEqual({ ok: false, reason: expect.stringMatching(/READY=1/) });
  });

  it('A2.1/A2.2: ready and reloading are ready', () => {
    const r = run();
    r.ready(0);
    expect(r.readiness()).toEqual({ ok: true, reason: 'ready' });
    r.reloading();
    expect(r.readiness()).toEqual({ ok: true, reason: 'reloading' });
  });

  it('A2.3: STOPPING is final: ready() and reloading() do nothing afterwards', () => {
    const r = run(5);
    r.ready(0);
    r.stopping();
    r.ready(100);
    r.reloading();
    expect(r.phase).toBe('stopping');
    expect(r.readiness()).toEqual({ ok: false, reason: expect.stringMatching(/STOPPING/) });
  });

  it('A2.3: ready() after STOPPING=1 does not re-arm the watchdog', () => {
    const r = run(5);
    r.stopping();
    r.ready(100);
    expect(r.watchdogDeadlineMs).toBeNull();
  });

  it('A2.2: RELOADING=1 before READY=1 is ignored: systemd enters reloading only from running', () => {
    const r = run();
    r.reloading();
    expect(r.phase).toBe('starting');
    expect(r.readiness().ok).toBe(false);
  });

  it('unknown since agent restart: ready and live, no start timeout armed; READY=1 and STOPPING=1 apply', () => {
    const r = new Run(1, 0, 5, 10, true);
    expect(r.phase).toBe('unknown');
    expect(r.readiness()).toEqual({ ok: true, reason: 'unknown since agent restart' });
    expect(r.startDeadlineMs).toBeNull();
    expect(r.tick(1_000_000)).toBeNull();
    expect(r.liveness().ok).toBe(true);
    r.reloading();
    expect(r.phase).toBe('unknown');
    r.ready(0);
    expect(r.phase).toBe('ready');
    const s = new Run(2, 0, 0, 0, true);
    s.stopping();
    expect(s.readiness().ok).toBe(false);
  });

  it('exited is final: stopping(), ready() and reloading() do nothing', () => {
    const r = run();
    r.exit();
    r.stopping();
    r.ready(0);
    r.reloading();
    expect(r.phase).toBe('exited');
    expect(r.readiness().ok).toBe(false);
  });
});

class NullOps implements StoreOps {
  closed: number[] = [];
  private id = 0;
  sameFile(): boolean {
    return false;
  }
  pollAdd(): number {
    return 0;
  }
  pollDel(): void {}
  close(fd: number): void {
    this.closed.push(fd);
  }
  nextId(): number {
    return ++this.id;
  }
}

function container(over: Partial<ContainerConfig> = {}): { c: Container; ops: NullOps } {
  const ops = new NullOps();
  return { c: new Container({ ...DEFAULTS, listen: [], name: 'app', ...over }, ops, 0), ops };
}

const STAT: FdStat = { dev: 1, ino: 1, mode: 0o140000, flags: 2 };

describe('Container', () => {
  it('F3.1: the store gets the configured max and the container name', () => {
    const { c } = container({ fileDescriptorStoreMax: 7 });
    expect(c.name).toBe('app');
    expect(c.store.max).toBe(7);
    expect(c.store.container).toBe('app');
  });

  it('N4.1: the runtime override wins over the configured value', () => {
    const { c } = container({ notifyAccess: 'exec' });
    expect(c.notifyAccess()).toBe('exec');
    c.run.notifyAccessOverride = 'none';
    expect(c.notifyAccess()).toBe('none');
  });

  it('N4.6: startRun gives a fresh run with new id, timers from the config, and the main pid', () => {
    const { c } = container({ watchdogSec: 3, timeoutStartSec: 4 });
    const first = c.run;
    first.status = 'old';
    first.errno = 5;
    first.notifyAccessOverride = 'none';
    first.watchdogUsecOverride = 0n;
    first.stopping();
    const next = c.startRun(1000, 42);
    expect(c.run).toBe(next);
    expect(next.id).toBe(first.id + 1);
    expect(next.startedAtMs).toBe(1000);
    expect(next.startDeadlineMs).toBe(5000);
    expect(next.watchdogMs()).toBe(3000);
    expect(next).toMatchObject({ phase: 'starting', status: null, errno: null, notifyAccessOverride: null, mainPid: 42 });
    expect(next.watchdogUsecOverride).toBeNull();
    expect(next.watchdogFailure).toBeNull();
  });

  it('N4.6: a new run keeps the store', () => {
    const { c, ops } = container();
    c.store.add([5], [STAT], 'keep', true);
    c.startRun(10, null);
    expect(c.store.list().map((e) => e.name)).toEqual(['keep']);
    expect(ops.closed).toEqual([]);
  });
});
