// FdStore.pin(): closes deferred while a restore sends a snapshot by fd number,
// and counted against the store's max (issue 7 item 2). The agent-level proof,
// with real sockets and /proc fd counts, is test/restore/pinning.test.ts.
import { describe, expect, it } from 'vitest';
import { FdStore, type FdStat, type StoreOps } from '../../src/store/store.js';

const S_IFSOCK = 0o140000;

/** StoreOps over distinct fake fds: every fd its own file; records closes. */
function ops(): StoreOps & { closed: number[] } {
  let id = 0;
  const closed: number[] = [];
  return { closed, sameFile: (a, b) => a === b, pollAdd: () => 0, pollDel: () => {}, close: (fd) => void closed.push(fd), nextId: () => ++id };
}

let nextFd = 100;
function fresh(n: number): { fds: number[]; stats: FdStat[] } {
  const fds = Array.from({ length: n }, () => nextFd++);
  return { fds, stats: fds.map((fd) => ({ dev: 1, ino: fd, mode: S_IFSOCK, flags: 2 })) };
}

function add(s: FdStore, n: number, name: string) {
  const { fds, stats } = fresh(n);
  return { fds, r: s.add(fds, stats, name, true) };
}

describe('FdStore pin and deferred closes', () => {
  it('F3.19/F3.17 while pinned: entries leave at once, their fds close at the last unpin', () => {
    const o = ops();
    const s = new FdStore('app', 10, o);
    const { fds } = add(s, 3, 'a');
    const unpin1 = s.pin();
    const unpin2 = s.pin();
    expect(s.removeByName('a')).toBe(3);
    expect(s.size).toBe(0);
    expect(s.deferred).toBe(3);
    expect(o.closed).toEqual([]);
    unpin1();
    unpin1(); // idempotent: does not count as the second unpin
    expect(o.closed).toEqual([]);
    unpin2();
    expect(o.closed).toEqual(fds);
    expect(s.deferred).toBe(0);
  });

  it('deferred closes count against max: a store+remove loop during a pin stops at max and refuses as over_limit', () => {
    const o = ops();
    const s = new FdStore('app', 5, o);
    add(s, 2, 'keep');
    const unpin = s.pin();
    const results = [];
    for (let i = 0; i < 10; i++) {
      results.push(add(s, 1, 'churn').r);
      s.removeByName('churn');
      expect(s.held).toBeLessThanOrEqual(5);
    }
    expect(results.filter((r) => r.stored === 1)).toHaveLength(3);
    expect(results.slice(3).every((r) => r.dropped.over_limit === 1)).toBe(true);
    expect(s.limitFields()).toEqual({ max: 5, deferredCloses: 3 });
    unpin();
    expect(s.held).toBe(2);
    expect(s.limitFields()).toEqual({ max: 5 });
    expect(add(s, 3, 'after').r.stored).toBe(3);
  });

  it('F3.24 during a restore: a lowered max takes the newest entries out at once, their closes wait for the unpin', () => {
    const o = ops();
    const s = new FdStore('app', 10, o);
    const { fds } = add(s, 5, 'x');
    const unpin = s.pin();
    // A close deferred before the lowering counts against the new max too.
    expect(s.removeByName('x')).toBe(5);
    expect(add(s, 4, 'y').r.stored).toBe(4);
    const y = s.list().map((e) => e.fd);
    expect(s.setMax(1)).toBe(3);
    expect(s.list().map((e) => e.fd)).toEqual([y[0]]);
    expect(s.deferred).toBe(8);
    expect(o.closed).toEqual([]);
    const z = add(s, 1, 'z');
    expect(z.r.dropped.over_limit).toBe(1);
    expect(o.closed).toEqual(z.fds);
    unpin();
    // The refused one at once; then the deferred ones: removed first, then the excess newest first.
    expect(o.closed).toEqual([...z.fds, ...fds, y[3], y[2], y[1]]);
    expect(s.held).toBe(1);
  });

  it('clear() while pinned defers every close; a lower max never drops what is held', () => {
    const o = ops();
    const s = new FdStore('app', 4, o);
    add(s, 4, 'x');
    const unpin = s.pin();
    expect(s.clear()).toBe(4);
    expect(s.held).toBe(4);
    s.setMax(2);
    expect(add(s, 1, 'y').r.dropped.over_limit).toBe(1);
    unpin();
    expect(o.closed).toHaveLength(5); // 4 deferred + the refused one
    expect(s.held).toBe(0);
  });
});
