// FdStore bookkeeping (spec §3b-§3c) with StoreOps that record every call. The
// kernel side (same-file test, epoll, close) is covered by the real-socket tests;
// here the double only models "open file description" identity and fd ownership.
import { describe, expect, it } from 'vitest';
import { DROP_REASONS, FdStore, type AddResult, type FdStat, type StoreOps } from '../../src/store/store.js';
import { prng } from '../helpers/prng.js';

const S_IFSOCK = 0o140000;
const S_IFREG = 0o100000;
const EPERM = 1;
const EBADF = 9;
const ENOMEM = 12;

interface FakeFile {
  ofd: number;
  stat: FdStat;
}

/** Recording StoreOps: hands out fd numbers, remembers which open file each names. */
class FakeKernel implements StoreOps {
  readonly open = new Map<number, FakeFile>();
  readonly issued: number[] = [];
  private readonly issuedSet = new Set<number>();
  readonly closes = new Map<number, number>();
  readonly strayCloses: number[] = [];
  readonly log: string[] = [];
  sameFileCalls = 0;
  pollResult: (fd: number) => number = () => 0;
  sameFileThrows = false;
  private fdCounter = 100;
  private ofdCounter = 0;
  private inoCounter = 1000;
  private idCounter = 0;

  /** A fresh open(): new open file description, new inode. */
  openNew(mode = S_IFSOCK): number {
    return this.issue({ ofd: ++this.ofdCounter, stat: { dev: 8, ino: ++this.inoCounter, mode, flags: 2 } });
  }

  /** dup()/SCM_RIGHTS copy: same open file description. */
  dup(fd: number): number {
    return this.issue({ ...this.file(fd) });
  }

  /** A second independent open() of the same inode. */
  reopen(fd: number): number {
    return this.issue({ ofd: ++this.ofdCounter, stat: { ...this.file(fd).stat } });
  }

  stat(fd: number): FdStat {
    return { ...this.file(fd).stat };
  }

  sameFile(a: number, b: number): boolean {
    this.sameFileCalls++;
    if (this.sameFileThrows) throw new Error('kcmp: EPERM');
    return this.file(a).ofd === this.file(b).ofd;
  }

  pollAdd(fd: number, key: number): number {
    this.file(fd);
    this.log.push(`pollAdd ${fd} ${key}`);
    return this.pollResult(fd);
  }

  pollDel(fd: number): void {
    this.file(fd);
    this.log.push(`pollDel ${fd}`);
  }

  close(fd: number): void {
    this.log.push(`close ${fd}`);
    if (!this.issuedSet.has(fd)) this.strayCloses.push(fd);
    this.closes.set(fd, (this.closes.get(fd) ?? 0) + 1);
    this.open.delete(fd);
  }

  nextId(): number {
    return ++this.idCounter;
  }

  closedCount(fd: number): number {
    return this.closes.get(fd) ?? 0;
  }

  private issue(f: FakeFile): number {
    const fd = ++this.fdCounter;
    this.open.set(fd, f);
    this.issued.push(fd);
    this.issuedSet.add(fd);
    return fd;
  }

  private file(fd: number): FakeFile {
    const f = this.open.get(fd);
    if (!f) throw new Error(`EBADF: fd ${fd} used after close or never opened`);
    return f;
  }
}

/** Every fd ever handed out is either stored (once, still open) or closed exactly once. */
function expectOwnership(k: FakeKernel, stores: FdStore[]): void {
  const stored = stores.flatMap((s) => s.list().map((e) => e.fd));
  const storedSet = new Set(stored);
  const problems: string[] = [];
  if (storedSet.size !== stored.length) problems.push('an fd is stored twice');
  for (const fd of k.strayCloses) problems.push(`closed fd ${fd} that nobody handed in`);
  for (const fd of k.issued) {
    const closed = k.closedCount(fd);
    if (storedSet.has(fd) && (closed !== 0 || !k.open.has(fd))) problems.push(`stored fd ${fd} was closed`);
    if (!storedSet.has(fd) && closed !== 1) problems.push(`fd ${fd} closed ${closed} times`);
  }
  expect(problems).toEqual([]);
}

function setup(max: number): { k: FakeKernel; s: FdStore } {
  const k = new FakeKernel();
  return { k, s: new FdStore('app', max, k) };
}

function add(k: FakeKernel, s: FdStore, fds: number[], name = 'stored', poll = true): AddResult {
  return s.add(fds, fds.map((fd) => k.stat(fd)), name, poll);
}

describe('F3.5-F3.8 adding', () => {
  it('F3.5: stores every fd with the name and poll flag, in insertion order', () => {
    const { k, s } = setup(10);
    const fds = [k.openNew(), k.openNew(), k.openNew()];
    const r = add(k, s, fds, 'web');
    expect(r).toEqual({ stored: 3, dropped: {} });
    expect(s.size).toBe(3);
    expect(s.list().map((e) => [e.fd, e.name, e.poll])).toEqual(fds.map((fd) => [fd, 'web', true]));
    expect(k.closes.size).toBe(0);
    expectOwnership(k, [s]);
  });

  it('F3.16: each new entry is registered with epoll under its store id', () => {
    const { k, s } = setup(10);
    const fds = [k.openNew(), k.openNew()];
    add(k, s, fds);
    const ids = s.list().map((e) => e.id);
    expect(k.log).toEqual([`pollAdd ${fds[0]} ${ids[0]}`, `pollAdd ${fds[1]} ${ids[1]}`]);
    expect(s.get(ids[0]!)?.fd).toBe(fds[0]);
  });

  it('F3.17: store ids are unique and never reused after removal', () => {
    const { k, s } = setup(10);
    add(k, s, [k.openNew()]);
    const first = s.list()[0]!.id;
    s.hangup(first);
    add(k, s, [k.openNew()]);
    expect(s.list()[0]!.id).not.toBe(first);
  });

  it('F3.8: the entry keeps the fstat data it was added with', () => {
    const { k, s } = setup(10);
    const fd = k.openNew(S_IFREG);
    add(k, s, [fd]);
    const e = s.list()[0]!;
    expect({ dev: e.dev, ino: e.ino, mode: e.mode, flags: e.flags }).toEqual(k.stat(fd));
  });

  it('F3.8: an fd whose fstat failed (mode 0) stops the add: it and the rest are closed as error', () => {
    const { k, s } = setup(10);
    const fds = [k.openNew(), k.openNew(), k.openNew()];
    const stats = fds.map((fd) => k.stat(fd));
    stats[1] = { ...stats[1]!, mode: 0 };
    const r = s.add(fds, stats, 'x', true);
    expect(r.stored).toBe(1);
    expect(r.dropped).toEqual({ error: 2 });
    expect(r.error).toMatch(/fstat/);
    expect(s.list().map((e) => e.fd)).toEqual([fds[0]]);
    expectOwnership(k, [s]);
  });

  it('F3.8: a failing same-file test stops the add and closes the rest as error', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    add(k, s, [a]);
    k.sameFileThrows = true;
    const fds = [k.reopen(a), k.openNew()];
    const r = add(k, s, fds);
    expect(r.stored).toBe(0);
    expect(r.dropped).toEqual({ error: 2 });
    expect(r.error).toMatch(/duplicate check failed: kcmp: EPERM/);
    expectOwnership(k, [s]);
  });

  it('an empty fd list is a no-op', () => {
    const { k, s } = setup(0);
    expect(add(k, s, [])).toEqual({ stored: 0, dropped: {} });
    expect(k.log).toEqual([]);
  });
});

describe('F3.8-F3.11 limit', () => {
  it('F3.8: fds beyond the max are closed with over_limit, the first ones stored', () => {
    const { k, s } = setup(3);
    const fds = [1, 2, 3, 4, 5].map(() => k.openNew());
    const r = add(k, s, fds);
    expect(r).toEqual({ stored: 3, dropped: { over_limit: 2 } });
    expect(s.list().map((e) => e.fd)).toEqual(fds.slice(0, 3));
    expect(k.closedCount(fds[3]!)).toBe(1);
    expect(k.closedCount(fds[4]!)).toBe(1);
    expectOwnership(k, [s]);
  });

  it('F3.8: the limit is checked before the duplicate test (no sameFile call on a full store)', () => {
    const { k, s } = setup(1);
    const a = k.openNew();
    add(k, s, [a]);
    const calls = k.sameFileCalls;
    const r = add(k, s, [k.reopen(a), k.openNew()]);
    expect(r).toEqual({ stored: 0, dropped: { over_limit: 2 } });
    expect(k.sameFileCalls).toBe(calls);
    expectOwnership(k, [s]);
  });

  it('F3.8: a duplicate does not use up the limit: later fds in the message are still stored', () => {
    const { k, s } = setup(2);
    const a = k.openNew();
    const fds = [a, k.dup(a), k.openNew(), k.openNew()];
    const r = add(k, s, fds);
    expect(r).toEqual({ stored: 2, dropped: { duplicate: 1, over_limit: 1 } });
    expect(s.list().map((e) => e.fd)).toEqual([fds[0], fds[2]]);
    expectOwnership(k, [s]);
  });

  it('F3.8: once the limit stops the add, nothing after it is polled or tested', () => {
    const { k, s } = setup(1);
    const fds = [k.openNew(), k.openNew(), k.openNew()];
    add(k, s, fds);
    // Registration runs once per message, after the limit closed the rest: order-free check.
    expect([...k.log].sort()).toEqual([`pollAdd ${fds[0]} 1`, `close ${fds[1]}`, `close ${fds[2]}`].sort());
  });

  it('F3.10: max 0 closes every fd with over_limit', () => {
    const { k, s } = setup(0);
    const fds = [k.openNew(), k.openNew()];
    expect(add(k, s, fds)).toEqual({ stored: 0, dropped: { over_limit: 2 } });
    expect(s.size).toBe(0);
    expect(k.sameFileCalls).toBe(0);
    expect(k.log.filter((l) => l.startsWith('pollAdd'))).toEqual([]);
    expectOwnership(k, [s]);
  });

  it('F3.11: re-sending an already-stored fd to a full store counts over_limit, not duplicate', () => {
    const { k, s } = setup(2);
    const a = k.openNew();
    add(k, s, [a, k.openNew()]);
    const r = add(k, s, [k.dup(a)]);
    expect(r).toEqual({ stored: 0, dropped: { over_limit: 1 } });
    expect(s.size).toBe(2);
    expectOwnership(k, [s]);
  });

  it('F3.24: a lower max closes the excess at once, newest first; a raised one is used by later adds', () => {
    const { k, s } = setup(5);
    const fds = [k.openNew(), k.openNew(), k.openNew(), k.openNew()];
    fds.forEach((fd, i) => add(k, s, [fd], `f${i}`));
    expect(s.setMax(5)).toBe(0);
    expect(s.setMax(2)).toBe(2);
    expect(s.max).toBe(2);
    expect(s.list().map((e) => e.name)).toEqual(['f0', 'f1']);
    // The two newest, each out of the epoll set before its close.
    expect(k.log.slice(-4)).toEqual([`pollDel ${fds[3]}`, `close ${fds[3]}`, `pollDel ${fds[2]}`, `close ${fds[2]}`]);
    expect(add(k, s, [k.openNew()]).dropped).toEqual({ over_limit: 1 });
    expect(s.setMax(0)).toBe(2);
    expect(s.size).toBe(0);
    expect(s.setMax(3)).toBe(0);
    expect(add(k, s, [k.openNew()]).stored).toBe(1);
    expectOwnership(k, [s]);
  });
});

describe('F3.12 duplicates', () => {
  it('F3.12: a copy of a stored fd is closed; the entry keeps its first name and poll flag', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    add(k, s, [a], 'first', true);
    const copy = k.dup(a);
    const r = add(k, s, [copy], 'second', false);
    expect(r).toEqual({ stored: 0, dropped: { duplicate: 1 } });
    expect(s.list()).toHaveLength(1);
    expect(s.list()[0]).toMatchObject({ fd: a, name: 'first', poll: true });
    expect(k.closedCount(copy)).toBe(1);
    expectOwnership(k, [s]);
  });

  it('F3.12: an unpolled first entry stays unpolled when re-sent with polling', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    add(k, s, [a], 'x', false);
    add(k, s, [k.dup(a)], 'y', true);
    expect(s.list()[0]).toMatchObject({ name: 'x', poll: false });
    expect(k.log.filter((l) => l.startsWith('pollAdd'))).toEqual([]);
  });

  it('F3.12: duplicates within the same message are detected', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    const fds = [a, k.dup(a), k.dup(a)];
    const r = add(k, s, fds);
    expect(r).toEqual({ stored: 1, dropped: { duplicate: 2 } });
    expect(s.list().map((e) => e.fd)).toEqual([a]);
    expectOwnership(k, [s]);
  });

  it('F3.12: two independent opens of one inode are distinct', () => {
    const { k, s } = setup(10);
    const a = k.openNew(S_IFREG);
    const b = k.reopen(a);
    expect(add(k, s, [a, b])).toEqual({ stored: 2, dropped: {} });
    expect(k.sameFileCalls).toBe(1);
  });

  it('F3.12: after an entry is removed, the same file can be stored again (new name)', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    const copy = k.dup(a);
    add(k, s, [a], 'old');
    s.removeByName('old');
    expect(add(k, s, [copy], 'new')).toEqual({ stored: 1, dropped: {} });
    expect(s.list()[0]).toMatchObject({ fd: copy, name: 'new' });
    expectOwnership(k, [s]);
  });

  it('F3.12: the same-file test only runs against fds of the same inode', () => {
    const { k, s } = setup(100);
    const a = k.openNew();
    add(k, s, [a, ...Array.from({ length: 50 }, () => k.openNew())]);
    expect(k.sameFileCalls).toBe(0);
    add(k, s, [k.dup(a)]);
    expect(k.sameFileCalls).toBe(1);
  });

  it('O(1) buckets: adding 10,000 distinct inodes calls sameFile 0 times', () => {
    const { k, s } = setup(20_000);
    const fds = Array.from({ length: 10_000 }, () => k.openNew());
    const r = add(k, s, fds);
    expect(r.stored).toBe(10_000);
    expect(k.sameFileCalls).toBe(0);
    // One at a time, too (each add sees a store of thousands of entries).
    for (let i = 0; i < 1_000; i++) add(k, s, [k.openNew()]);
    expect(k.sameFileCalls).toBe(0);
    expect(s.size).toBe(11_000);
  });

  it('O(1) buckets: a removed entry leaves no bucket behind to test against', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    const b = k.reopen(a);
    add(k, s, [a], 'x');
    s.removeByName('x');
    add(k, s, [b]);
    expect(k.sameFileCalls).toBe(0);
  });
});

describe('F3.16 polling', () => {
  it('F3.17: FDPOLL=0 (poll false) skips epoll and stores unpolled', () => {
    const { k, s } = setup(10);
    add(k, s, [k.openNew()], 'x', false);
    expect(s.list()[0]!.poll).toBe(false);
    expect(k.log).toEqual([]);
  });

  it('F3.16: EPERM from epoll (regular file, memfd) stores the fd unpolled', () => {
    const { k, s } = setup(10);
    const file = k.openNew(S_IFREG);
    const sock = k.openNew();
    k.pollResult = (fd) => (fd === file ? -EPERM : 0);
    expect(add(k, s, [file, sock])).toEqual({ stored: 2, dropped: {} });
    expect(s.list().map((e) => [e.fd, e.poll])).toEqual([
      [file, false],
      [sock, true],
    ]);
    expectOwnership(k, [s]);
  });

  it('F3.16: an unpolled (EPERM) entry is never pollDel-ed when removed', () => {
    const { k, s } = setup(10);
    const file = k.openNew(S_IFREG);
    k.pollResult = () => -EPERM;
    add(k, s, [file], 'f');
    k.log.length = 0;
    s.removeByName('f');
    expect(k.log).toEqual([`close ${file}`]);
  });

  it.each([EBADF, ENOMEM])('F3.16: epoll errno %i stops the add: this fd and the rest closed as error', (errno) => {
    const { k, s } = setup(10);
    const fds = [k.openNew(), k.openNew(), k.openNew(), k.openNew()];
    k.pollResult = (fd) => (fd === fds[1] ? -errno : 0);
    const r = add(k, s, fds);
    expect(r.stored).toBe(1);
    expect(r.dropped).toEqual({ error: 3 });
    expect(r.error).toBe(`epoll registration failed (errno ${errno})`);
    expect(s.list().map((e) => e.fd)).toEqual([fds[0]]);
    for (const fd of fds.slice(1)) expect(k.closedCount(fd)).toBe(1);
    expectOwnership(k, [s]);
  });

  it('F3.16: a failed registration leaves no entry to find by duplicate test', () => {
    const { k, s } = setup(10);
    const a = k.openNew();
    const copy = k.dup(a);
    k.pollResult = () => -EBADF;
    add(k, s, [a]);
    k.pollResult = () => 0;
    expect(add(k, s, [copy])).toEqual({ stored: 1, dropped: {} });
    expectOwnership(k, [s]);
  });
});

describe('F3.17 hang-up', () => {
  it('F3.17: hangup(id) closes and removes the entry, pollDel before close', () => {
    const { k, s } = setup(10);
    const fds = [k.openNew(), k.openNew()];
    add(k, s, fds);
    const id = s.list()[0]!.id;
    k.log.length = 0;
    expect(s.hangup(id)).toBe(true);
    expect(k.log).toEqual([`pollDel ${fds[0]}`, `close ${fds[0]}`]);
    expect(s.get(id)).toBeUndefined();
    expect(s.list().map((e) => e.fd)).toEqual([fds[1]]);
    expectOwnership(k, [s]);
  });

  it('F3.17: a stale id (already removed, or never issued) is ignored', () => {
    const { k, s } = setup(10);
    add(k, s, [k.openNew()]);
    const id = s.list()[0]!.id;
    expect(s.hangup(id)).toBe(true);
    k.log.length = 0;
    expect(s.hangup(id)).toBe(false);
    expect(s.hangup(9999)).toBe(false);
    expect(k.log).toEqual([]);
    expectOwnership(k, [s]);
  });

  it('F3.17: an id from another store (shared id space) is ignored', () => {
    const k = new FakeKernel();
    const a = new FdStore('a', 10, k);
    const b = new FdStore('b', 10, k);
    a.add([k.openNew()], [k.stat(k.issued[0]!)], 'x', true);
    const idA = a.list()[0]!.id;
    expect(b.hangup(idA)).toBe(false);
    expect(a.size).toBe(1);
  });
});

describe('F3.19 remove by name', () => {
  it('F3.19: removes all entries with exactly that name, pollDel before close for each', () => {
    const { k, s } = setup(10);
    const x1 = k.openNew();
    const y = k.openNew();
    const x2 = k.openNew();
    add(k, s, [x1], 'x');
    add(k, s, [y], 'y');
    add(k, s, [x2], 'x');
    k.log.length = 0;
    expect(s.removeByName('x')).toBe(2);
    expect(k.log).toEqual([`pollDel ${x1}`, `close ${x1}`, `pollDel ${x2}`, `close ${x2}`]);
    expect(s.list().map((e) => e.name)).toEqual(['y']);
    expectOwnership(k, [s]);
  });

  it('F3.19: byte compare: no prefix, case or whitespace matching', () => {
    const { k, s } = setup(10);
    add(k, s, [k.openNew()], 'web');
    for (const n of ['WEB', 'we', 'web ', ' web', 'web1']) expect(s.removeByName(n)).toBe(0);
    expect(s.size).toBe(1);
  });

  it('F3.19: the empty name removes exactly the entries with the empty name', () => {
    const { k, s } = setup(10);
    add(k, s, [k.openNew(), k.openNew()], '');
    add(k, s, [k.openNew()], 'stored');
    expect(s.removeByName('')).toBe(2);
    expect(s.list().map((e) => e.name)).toEqual(['stored']);
    expectOwnership(k, [s]);
  });

  it('F3.19: no match is silent and closes nothing', () => {
    const { k, s } = setup(10);
    add(k, s, [k.openNew()], 'a');
    k.log.length = 0;
    expect(s.removeByName('b')).toBe(0);
    expect(k.log).toEqual([]);
  });

  it('F3.19: removal frees room under the limit', () => {
    const { k, s } = setup(1);
    add(k, s, [k.openNew()], 'a');
    s.removeByName('a');
    expect(add(k, s, [k.openNew()]).stored).toBe(1);
    expectOwnership(k, [s]);
  });
});

describe('clear', () => {
  it('F3.21: clear() closes everything, returns the count, and the store is reusable', () => {
    const { k, s } = setup(10);
    const polled = k.openNew();
    const unpolled = k.openNew();
    add(k, s, [polled], 'p', true);
    add(k, s, [unpolled], 'u', false);
    k.log.length = 0;
    expect(s.clear()).toBe(2);
    expect(k.log).toEqual([`pollDel ${polled}`, `close ${polled}`, `close ${unpolled}`]);
    expect(s.size).toBe(0);
    expect(s.clear()).toBe(0);
    expect(add(k, s, [k.openNew()]).stored).toBe(1);
    expectOwnership(k, [s]);
  });
});


const NAMES = ['a', 'b', '', 'stored'];

/** One incoming fd: new file, copy of a stored one, or a second open of a stored inode. */
function randomFd(k: FakeKernel, s: FdStore, rnd: () => number): number {
  const entries = s.list();
  const pick = entries[Math.floor(rnd() * entries.length)];
  const r = rnd();
  if (pick && r < 0.3) return k.dup(pick.fd);
  if (pick && r < 0.4) return k.reopen(pick.fd);
  return k.openNew(rnd() < 0.2 ? S_IFREG : S_IFSOCK);
}

function randomStep(k: FakeKernel, s: FdStore, rnd: () => number): void {
  const r = rnd();
  if (r < 0.6) {
    const fds = Array.from({ length: Math.floor(rnd() * 6) }, () => randomFd(k, s, rnd));
    const stats = fds.map((fd) => k.stat(fd));
    if (fds.length > 0 && rnd() < 0.05) stats[Math.floor(rnd() * fds.length)]!.mode = 0;
    const res = s.add(fds, stats, NAMES[Math.floor(rnd() * NAMES.length)]!, rnd() < 0.7);
    const dropped = Object.values(res.dropped).reduce((n, v) => n + v, 0);
    expect(res.stored + dropped).toBe(fds.length);
    for (const reason of Object.keys(res.dropped)) expect(DROP_REASONS).toContain(reason);
  } else if (r < 0.75) {
    s.removeByName(NAMES[Math.floor(rnd() * NAMES.length)]!);
  } else if (r < 0.95) {
    s.hangup(Math.floor(rnd() * 200));
  } else {
    s.clear();
  }
}

function expectNoTwoEntriesShareAFile(k: FakeKernel, s: FdStore): void {
  const ofds = s.list().map((e) => k.open.get(e.fd)!.ofd);
  expect(new Set(ofds).size).toBe(ofds.length);
}

describe('ownership under random messages (property-style)', () => {
  it.each([1, 2, 3, 4, 5, 6, 7, 8])('seed %i: every fd handed in is stored or closed exactly once', (seed) => {
    const rnd = prng(seed);
    const { k, s } = setup(Math.floor(rnd() * 12));
    k.pollResult = () => {
      const r = rnd();
      return r < 0.1 ? -EPERM : r < 0.13 ? -EBADF : 0;
    };
    for (let step = 0; step < 400; step++) {
      randomStep(k, s, rnd);
      expectOwnership(k, [s]);
      expect(s.size).toBeLessThanOrEqual(s.max);
      expectNoTwoEntriesShareAFile(k, s);
    }
    s.clear();
    expectOwnership(k, [s]);
    expect(k.open.size).toBe(0);
  });
});
