// DoneWatcher (--exit-when-done) with injected timers: which events arm, cancel and
// fire the linger, without waiting on a clock (issue 10; test/agent/exit-when-done
// runs it with real processes).
import { describe, expect, it } from 'vitest';
import { DoneWatcher, type DoneTimers } from '../../src/agent/done.js';

/** Timers the test fires by hand: `pending` holds what is armed. */
function manualTimers(): DoneTimers & { pending: Map<number, { fn: () => void; ms: number }>; fire(): void } {
  const pending = new Map<number, { fn: () => void; ms: number }>();
  let next = 0;
  return {
    pending,
    set: (fn, ms) => {
      pending.set(++next, { fn, ms });
      return next;
    },
    clear: (t) => void pending.delete(t as number),
    fire: () => {
      const all = [...pending.values()];
      pending.clear();
      for (const p of all) p.fn();
    },
  };
}

/** Whether `done` has resolved, after the microtasks already queued. */
async function isDone(w: DoneWatcher): Promise<boolean> {
  let done = false;
  void w.done.then(() => (done = true));
  await Promise.resolve();
  await Promise.resolve();
  return done;
}

describe('DoneWatcher', () => {
  it('arms the linger once every container has exited, and resolves when it fires', async () => {
    const timers = manualTimers();
    const w = new DoneWatcher(['a', 'b'], 2_000, timers);
    const o = w.observer();
    o.runStarted('a', 10);
    o.runStarted('b', 11);
    o.stateChanged('a', 'exited');
    expect(timers.pending.size).toBe(0);
    o.stateChanged('b', 'exited');
    expect([...timers.pending.values()].map((p) => p.ms)).toEqual([2_000]);
    expect(await isDone(w)).toBe(false);
    timers.fire();
    expect(await isDone(w)).toBe(true);
  });

  it('a start within the linger cancels the pending exit; the next exit arms a new linger', async () => {
    const timers = manualTimers();
    const w = new DoneWatcher(['a'], 2_000, timers);
    const o = w.observer();
    o.runStarted('a', 10);
    o.stateChanged('a', 'exited');
    expect(timers.pending.size).toBe(1);
    o.runStarted('a', 12);
    expect(timers.pending.size).toBe(0);
    o.stateChanged('a', 'exited');
    expect(timers.pending.size).toBe(1);
    timers.fire();
    expect(await isDone(w)).toBe(true);
  });

  it('ignores containers it does not serve, and everything after it fired', async () => {
    const timers = manualTimers();
    const w = new DoneWatcher(['a'], 0, timers);
    const o = w.observer();
    o.stateChanged('other', 'exited');
    expect(timers.pending.size).toBe(0);
    o.stateChanged('a', 'exited');
    timers.fire();
    o.runStarted('a', 13);
    o.stateChanged('a', 'exited');
    expect(timers.pending.size).toBe(0);
    expect(await isDone(w)).toBe(true);
  });
});
