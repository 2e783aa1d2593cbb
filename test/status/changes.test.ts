/**
 * The long-poll cursor: which events move the generation (real notify datagrams
 * parsed and applied to a real Container), how waiters are woken (once per turn,
 * after everything applied in it), bounded, cancelled and timed out. Timers are
 * injected and fired by the test; microtasks are real.
 */
import { describe, expect, it } from 'vitest';
import { applyMessage, type ApplyContext } from '../../src/notify/apply.js';
import { parseDatagram } from '../../src/notify/parse.js';
import { StatusChanges, type WaitResult } from '../../src/status/changes.js';
import { STATUS_WAITERS_MAX } from '../../src/status/types.js';
import { Container } from '../../src/unit/container.js';
import { DEFAULTS } from '../../src/config/types.js';
import type { StoreOps } from '../../src/store/store.js';

class ManualTimers {
  private next = 0;
  readonly pending = new Map<number, () => void>();
  readonly timers = {
    set: (fn: () => void): number => {
      this.pending.set(++this.next, fn);
      return this.next;
    },
    clear: (id: number): void => void this.pending.delete(id),
  };
  fireAll(): void {
    for (const [id, fn] of [...this.pending]) {
      this.pending.delete(id);
      fn();
    }
  }
}

function fixture(maxWaiters?: number) {
  let nextId = 0;
  const closed: number[] = [];
  const ops: StoreOps = { sameFile: () => false, pollAdd: () => 0, pollDel: () => {}, close: (fd) => closed.push(fd), nextId: () => ++nextId };
  const c = new Container({ ...DEFAULTS, name: 'app', fileDescriptorStoreMax: 2 }, ops, 0);
  const t = new ManualTimers();
  const changes = new StatusChanges({ runOf: (n) => (n === 'app' ? c.run : undefined), timers: t.timers, maxWaiters });
  changes.seed(['app']);
  const ctx: ApplyContext = {
    procs: { cgroup: () => null, alive: () => true, self: () => 1, reaped: () => false, mountinfo: () => null },
    obs: changes.observer,
    nowMs: 0,
    closeFd: (fd) => closed.push(fd),
  };
  let ino = 0;
  const send = (text: string | Buffer, fds: number[] = []): void => {
    const parsed = parseDatagram({ data: typeof text === 'string' ? Buffer.from(text) : text, hasCreds: true, truncated: false, ctruncated: false, fdCount: fds.length });
    if (!parsed.ok) throw new Error(parsed.detail);
    const stats = fds.map(() => ({ dev: 1, ino: ++ino, mode: 0o140777, flags: 2 }));
    applyMessage(ctx, c, parsed.message, { pid: 0, uid: 0, gid: 0 }, fds, stats);
  };
  return { c, t, changes, send, closed };
}

/** Lets queued microtasks (the flush) run. */
const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('StatusChanges: what moves the generation', () => {
  it('starts at 1; moves on READY=1, STATUS=, ERRNO=, WATCHDOG_USEC=, FDSTORE=1, over_limit, removal', async () => {
    const f = fixture();
    expect(f.changes.generation).toBe(1);
    const steps: Array<[string, number[]]> = [
      ['READY=1', []],
      ['STATUS=serving', []],
      ['ERRNO=5', []],
      ['WATCHDOG_USEC=2000000', []],
      ['FDSTORE=1\nFDNAME=a', [10]],
      ['FDSTORE=1\nFDNAME=b', [11, 12]], // one stored, one over the limit of 2
      ['FDSTOREREMOVE=1\nFDNAME=a', []],
    ];
    let last = f.changes.generation;
    for (const [text, fds] of steps) {
      f.send(text, fds);
      await turn();
      expect(f.changes.generation, text).toBeGreaterThan(last);
      last = f.changes.generation;
    }
  });

  it('does not move on WATCHDOG=1, the same STATUS= again, NOTIFYACCESS=, fds not stored, or a main pid', async () => {
    const f = fixture();
    f.send('READY=1\nSTATUS=serving\nWATCHDOG_USEC=2000000');
    await turn();
    const g = f.changes.generation;
    for (const text of ['WATCHDOG=1', 'STATUS=serving', 'NOTIFYACCESS=all', 'EXTEND_TIMEOUT_USEC=1000000', 'READY=0']) {
      f.send(text);
      await turn();
      expect(f.changes.generation, text).toBe(g);
    }
    f.send('WATCHDOG=1', [20]); // an fd without FDSTORE=1: closed as not_stored
    f.changes.observer.mainPid('app', 42);
    f.changes.observer.dropped('app', 'duplicate', 1, {});
    f.changes.observer.rejected('app', 'too_large', 'x');
    await turn();
    expect(f.changes.generation).toBe(g);
    expect(f.closed).toEqual([20]);
  });

  it('a STATUS= cleared by invalid UTF-8 is a change (A2.5)', async () => {
    const f = fixture();
    f.send('STATUS=serving');
    await turn();
    const g = f.changes.generation;
    f.send(Buffer.from([...Buffer.from('STATUS='), 0xff]));
    await turn();
    expect(f.c.run.status).toBeNull();
    expect(f.changes.generation).toBeGreaterThan(g);
  });

  it('bump() (a config change) moves it', async () => {
    const f = fixture();
    f.changes.bump();
    expect(f.changes.generation).toBe(2);
  });
});

describe('StatusChanges: waiters', () => {
  it('answers at once when the cursor is not the current generation (a newer change, or another agent process)', async () => {
    const f = fixture();
    f.changes.bump();
    for (const after of [1, 99]) {
      const w = f.changes.wait(after, 30_000)!;
      expect(await w.result).toBe('changed');
    }
    expect(f.changes.waiting).toBe(0);
    expect(f.t.pending.size).toBe(0);
  });

  it('wakes every waiter once, after the whole burst was applied', async () => {
    const f = fixture();
    const g = f.changes.generation;
    const seen: Array<[WaitResult, number, number]> = [];
    const ws = [f.changes.wait(g, 30_000)!, f.changes.wait(g, 30_000)!];
    for (const w of ws) void w.result.then((r) => seen.push([r, f.changes.generation, f.c.store.size]));
    f.send('FDSTORE=1\nFDNAME=a', [10]);
    f.send('FDSTORE=1\nFDNAME=b', [11]);
    await turn();
    expect(seen).toEqual([['changed', g + 2, 2], ['changed', g + 2, 2]]);
    expect(f.changes.waiting).toBe(0);
    expect(f.t.pending.size).toBe(0); // their timers are cleared
  });

  it('a watchdog ping does not wake a waiter; its timer does, with the same generation', async () => {
    const f = fixture();
    f.send('READY=1\nWATCHDOG_USEC=1000000');
    await turn();
    const g = f.changes.generation;
    const w = f.changes.wait(g, 1_000)!;
    let result: WaitResult | null = null;
    void w.result.then((r) => (result = r));
    for (let i = 0; i < 5; i++) f.send('WATCHDOG=1');
    await turn();
    expect(result).toBeNull();
    f.t.fireAll();
    expect(await w.result).toBe('timeout');
    expect(f.changes.generation).toBe(g);
  });

  it(`holds at most ${STATUS_WAITERS_MAX} waiters; a cancelled one frees its slot and its timer`, async () => {
    const f = fixture();
    const g = f.changes.generation;
    const ws = Array.from({ length: STATUS_WAITERS_MAX }, () => f.changes.wait(g, 30_000));
    expect(ws.every((w) => w !== null)).toBe(true);
    expect(f.changes.wait(g, 30_000)).toBeNull();
    ws[0]!.cancel();
    ws[0]!.cancel(); // idempotent
    expect(await ws[0]!.result).toBe('cancelled');
    expect(f.changes.waiting).toBe(STATUS_WAITERS_MAX - 1);
    expect(f.t.pending.size).toBe(STATUS_WAITERS_MAX - 1);
    expect(f.changes.wait(g, 30_000)).not.toBeNull();
    f.changes.cancelAll();
    expect(f.changes.waiting).toBe(0);
    expect(f.t.pending.size).toBe(0);
  });
});
