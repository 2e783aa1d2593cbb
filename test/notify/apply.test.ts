// applyMessage: one valid notify message against one container (spec §2, §3, §4).
// Procs is a fake process table; Observer and StoreOps record their calls (injected
// interfaces; the kernel side is covered by the real-socket tests).
import { describe, expect, it } from 'vitest';
import { applyMessage, type ApplyContext, type Sender } from '../../src/notify/apply.js';
import { Container } from '../../src/unit/container.js';
import type { Observer, SenderInfo } from '../../src/unit/observer.js';
import type { Procs } from '../../src/native/procs.js';
import type { RunPhase } from '../../src/unit/run.js';
import { DEFAULTS, type ContainerConfig } from '../../src/config/types.js';
import type { Fields } from '../../src/log/log.js';
import { parseDatagram, type NotifyMessage, type RejectReason } from '../../src/notify/parse.js';
import type { DropReason, FdStat, StoreOps } from '../../src/store/store.js';
import { prng } from '../helpers/prng.js';

const S_IFSOCK = 0o140000;
const EPERM = 1;
const EBADF = 9;

// The fake process table.
const SELF = 7;
const APP = 100; // main process, cgroup A
const HELPER = 200; // same container, cgroup A
const STRANGER = 300; // another container, cgroup B
const ZOMBIE = 400; // cgroup A, not alive
const UNREADABLE = 500; // alive, but /proc/PID/cgroup unreadable
const CG_A = '0::/kubepods/pod1/ctr-app\n';
const CG_B = '0::/kubepods/pod1/ctr-other\n';

class FakeProcs implements Procs {
  readonly table = new Map<number, { cgroup: string | null; alive: boolean }>([
    [SELF, { cgroup: '0::/kubepods/pod1/ctr-fdstore\n', alive: true }],
    [APP, { cgroup: CG_A, alive: true }],
    [HELPER, { cgroup: CG_A, alive: true }],
    [STRANGER, { cgroup: CG_B, alive: true }],
    [ZOMBIE, { cgroup: CG_A, alive: false }],
    [UNREADABLE, { cgroup: null, alive: true }],
  ]);
  cgroup(pid: number): string | null {
    return this.table.get(pid)?.cgroup ?? null;
  }
  alive(pid: number): boolean {
    return this.table.get(pid)?.alive ?? false;
  }
  self(): number {
    return SELF;
  }
  reaped(): boolean {
    return false;
  }
  mountinfo(): string | null {
    return null;
  }
}

type Event =
  | ['accepted', string]
  | ['rejected', string, RejectReason, string, SenderInfo | undefined]
  | ['dropped', string, DropReason, number, Fields]
  | ['stored', string, number, string]
  | ['warn', string, string, Fields]
  | ['stateChanged', string, RunPhase]
  | ['mainPid', string, number]
  | ['watchdogPing', string]
  | ['watchdogFailed', string, string]
  | ['runStarted', string, number | null]
  | ['restored', string, number, number]
  | ['restoreFailed', string, string];

class RecordingObserver implements Observer {
  readonly events: Event[] = [];
  accepted(c: string): void {
    this.events.push(['accepted', c]);
  }
  rejected(c: string, reason: RejectReason, detail: string, sender?: SenderInfo): void {
    this.events.push(['rejected', c, reason, detail, sender]);
  }
  dropped(c: string, reason: DropReason, count: number, fields: Fields): void {
    this.events.push(['dropped', c, reason, count, fields]);
  }
  stored(c: string, count: number, fdname: string): void {
    this.events.push(['stored', c, count, fdname]);
  }
  warn(c: string, msg: string, fields: Fields): void {
    this.events.push(['warn', c, msg, fields]);
  }
  stateChanged(c: string, phase: RunPhase): void {
    this.events.push(['stateChanged', c, phase]);
  }
  mainPid(c: string, pid: number): void {
    this.events.push(['mainPid', c, pid]);
  }
  watchdogPing(c: string): void {
    this.events.push(['watchdogPing', c]);
  }
  watchdogFailed(c: string, kind: 'timeout' | 'trigger' | 'start_timeout'): void {
    this.events.push(['watchdogFailed', c, kind]);
  }
  runStarted(c: string, mainPid: number | null): void {
    this.events.push(['runStarted', c, mainPid]);
  }
  restored(c: string, fds: number, seconds: number): void {
    this.events.push(['restored', c, fds, seconds]);
  }
  restoreFailed(c: string, reason: string): void {
    this.events.push(['restoreFailed', c, reason]);
  }
  kinds(): string[] {
    return this.events.map((e) => e[0]);
  }
  warnings(): string[] {
    return this.events.filter((e) => e[0] === 'warn').map((e) => e[2] as string);
  }
  /** Total count per drop reason. */
  drops(): Partial<Record<DropReason, number>> {
    const out: Partial<Record<DropReason, number>> = {};
    for (const e of this.events) if (e[0] === 'dropped') out[e[2]] = (out[e[2]] ?? 0) + e[3];
    return out;
  }
  clear(): void {
    this.events.length = 0;
  }
}

/** StoreOps plus the ApplyContext close: one fd table, every close recorded. */
class FakeKernel implements StoreOps {
  readonly open = new Map<number, number>(); // fd -> open file description
  readonly issued = new Set<number>();
  readonly closes = new Map<number, number>();
  readonly stray: number[] = [];
  readonly log: string[] = [];
  pollResult: (fd: number) => number = () => 0;
  private fdCounter = 1000;
  private ofdCounter = 0;
  private idCounter = 0;

  openNew(): number {
    return this.issue(++this.ofdCounter);
  }
  dup(fd: number): number {
    return this.issue(this.ofd(fd));
  }
  stat(fd: number): FdStat {
    // One inode per open file description is enough here; buckets are store.test's subject.
    return { dev: 1, ino: this.ofd(fd), mode: S_IFSOCK, flags: 2 };
  }
  sameFile(a: number, b: number): boolean {
    return this.ofd(a) === this.ofd(b);
  }
  pollAdd(fd: number): number {
    this.ofd(fd);
    this.log.push(`pollAdd ${fd}`);
    return this.pollResult(fd);
  }
  pollDel(fd: number): void {
    this.ofd(fd);
    this.log.push(`pollDel ${fd}`);
  }
  close(fd: number): void {
    this.log.push(`close ${fd}`);
    if (!this.issued.has(fd)) this.stray.push(fd);
    this.closes.set(fd, (this.closes.get(fd) ?? 0) + 1);
    this.open.delete(fd);
  }
  nextId(): number {
    return ++this.idCounter;
  }
  closed(fd: number): number {
    return this.closes.get(fd) ?? 0;
  }
  private issue(ofd: number): number {
    const fd = ++this.fdCounter;
    this.open.set(fd, ofd);
    this.issued.add(fd);
    return fd;
  }
  private ofd(fd: number): number {
    const o = this.open.get(fd);
    if (o === undefined) throw new Error(`EBADF: fd ${fd} used after close`);
    return o;
  }
}

function message(text: string | Uint8Array): NotifyMessage {
  const data = typeof text === 'string' ? Buffer.from(text, 'latin1') : text;
  const r = parseDatagram({ data, hasCreds: true, truncated: false, ctruncated: false, fdCount: 0 });
  if (!r.ok) throw new Error(`test message rejected: ${r.reason}`);
  return r.message;
}

function sender(pid: number, uid = 1000): Sender {
  return { pid, uid, gid: uid };
}

interface World {
  k: FakeKernel;
  obs: RecordingObserver;
  ctx: ApplyContext;
  c: Container;
  /** Apply `text` from `from` with `nfds` fresh fds (or the given ones); returns the fds. */
  send(text: string | Uint8Array, from?: Sender, fds?: number | number[]): { ok: boolean; fds: number[] };
}

function world(over: Partial<ContainerConfig> = {}, mainPid: number | null = APP): World {
  const k = new FakeKernel();
  const obs = new RecordingObserver();
  const cfg: ContainerConfig = { ...DEFAULTS, listen: [], name: 'app', ...over };
  const ctx: ApplyContext = { procs: new FakeProcs(), obs, nowMs: 0, closeFd: (fd) => k.close(fd) };
  const c = new Container(cfg, k, 0);
  c.startRun(0, mainPid);
  const send: World['send'] = (text, from = sender(APP), fds = 0) => {
    const list = typeof fds === 'number' ? Array.from({ length: fds }, () => k.openNew()) : fds;
    const ok = applyMessage(ctx, c, message(text), from, list, list.map((fd) => k.stat(fd)));
    return { ok, fds: list };
  };
  return { k, obs, ctx, c, send };
}

/** D1.28: every fd handed in is stored (once, open) or closed exactly once. */
function expectOwnership(w: World): void {
  const stored = w.c.store.list().map((e) => e.fd);
  const storedSet = new Set(stored);
  const problems: string[] = [];
  if (storedSet.size !== stored.length) problems.push('an fd is stored twice');
  for (const fd of w.k.stray) problems.push(`closed fd ${fd} nobody handed in`);
  for (const fd of w.k.issued) {
    const n = w.k.closed(fd);
    if (storedSet.has(fd) && (n !== 0 || !w.k.open.has(fd))) problems.push(`stored fd ${fd} was closed`);
    if (!storedSet.has(fd) && n !== 1) problems.push(`fd ${fd} closed ${n} times`);
  }
  expect(problems).toEqual([]);
}

describe('N4.3 authorization', () => {
  it('N4.3: none rejects every sender; nothing applies and the fds are closed as unauthorized', () => {
    const w = world({ notifyAccess: 'none' });
    const r = w.send('READY=1\nSTATUS=up\nFDSTORE=1', sender(APP), 2);
    expect(r.ok).toBe(false);
    expect(w.c.run.phase).toBe('starting');
    expect(w.c.run.status).toBeNull();
    expect(w.c.store.size).toBe(0);
    expect(w.obs.kinds()).toEqual(['rejected', 'dropped']);
    expect(w.obs.events[0]).toMatchObject(['rejected', 'app', 'unauthorized', expect.stringMatching(/none/), { pid: APP }]);
    expect(w.obs.drops()).toEqual({ unauthorized: 2 });
    expectOwnership(w);
  });

  it('N4.3: none also rejects a pid-0 sender (no shared PID namespace)', () => {
    const w = world({ notifyAccess: 'none' });
    expect(w.send('READY=1', sender(0)).ok).toBe(false);
  });

  it('N4.3: an unauthorized message with no fds logs no drop', () => {
    const w = world({ notifyAccess: 'none' });
    w.send('READY=1');
    expect(w.obs.kinds()).toEqual(['rejected']);
  });

  it.each(['main', 'exec'] as const)('N4.3: %s accepts only the main pid', (access) => {
    const w = world({ notifyAccess: access });
    expect(w.send('STATUS=from main', sender(APP)).ok).toBe(true);
    const r = w.send('STATUS=from helper\nFDSTORE=1', sender(HELPER), 1);
    expect(r.ok).toBe(false);
    expect(w.c.run.status).toBe('from main');
    expect(w.obs.drops()).toEqual({ unauthorized: 1 });
    expectOwnership(w);
  });

  it('N4.5: main with an unknown main pid rejects everything', () => {
    const w = world({ notifyAccess: 'main' }, null);
    const r = w.send('READY=1', sender(APP));
    expect(r.ok).toBe(false);
    expect(w.obs.events[0]).toMatchObject(['rejected', 'app', 'unauthorized', expect.stringMatching(/not known/), { pid: APP }]);
  });

  it('N4.3: all accepts any sender routed to the container', () => {
    const w = world({ notifyAccess: 'all' });
    expect(w.send('STATUS=a', sender(HELPER)).ok).toBe(true);
    expect(w.send('STATUS=b', sender(STRANGER)).ok).toBe(true);
    expect(w.c.run.status).toBe('b');
    expect(w.obs.kinds().filter((k) => k === 'accepted')).toHaveLength(2);
  });

  it.each(['main', 'exec', 'all'] as const)('N4.3 (deviation): pid 0 is accepted under %s, even with no main pid', (access) => {
    const w = world({ notifyAccess: access }, null);
    expect(w.send('READY=1', sender(0)).ok).toBe(true);
    expect(w.c.run.phase).toBe('ready');
  });
});

describe('A2.19 NOTIFYACCESS=', () => {
  it('A2.19: the override applies to later datagrams, not to the one carrying it', () => {
    const w = world({ notifyAccess: 'all' });
    expect(w.send('NOTIFYACCESS=main\nSTATUS=set by helper', sender(HELPER)).ok).toBe(true);
    expect(w.c.run.status).toBe('set by helper');
    expect(w.c.notifyAccess()).toBe('main');
    expect(w.send('STATUS=again', sender(HELPER)).ok).toBe(false);
    expect(w.send('STATUS=main', sender(APP)).ok).toBe(true);
  });

  it('A2.19: NOTIFYACCESS=none disables reception for later messages only', () => {
    const w = world({ notifyAccess: 'all' });
    expect(w.send('NOTIFYACCESS=none\nREADY=1').ok).toBe(true);
    expect(w.c.run.phase).toBe('ready');
    expect(w.send('STATUS=x').ok).toBe(false);
  });

  it('A2.19: an invalid value warns and reverts to the configured value', () => {
    const w = world({ notifyAccess: 'all' });
    w.send('NOTIFYACCESS=main');
    expect(w.c.notifyAccess()).toBe('main');
    w.send('NOTIFYACCESS=bogus');
    expect(w.c.run.notifyAccessOverride).toBeNull();
    expect(w.c.notifyAccess()).toBe('all');
    expect(w.obs.warnings()).toEqual([expect.stringMatching(/NOTIFYACCESS/)]);
    expect(w.send('STATUS=helper', sender(HELPER)).ok).toBe(true);
  });

  it('A2.19: case matters: NOTIFYACCESS=ALL is invalid', () => {
    const w = world({ notifyAccess: 'main' });
    w.send('NOTIFYACCESS=ALL');
    expect(w.c.notifyAccess()).toBe('main');
    expect(w.send('STATUS=x', sender(HELPER)).ok).toBe(false);
  });

  it('N4.6: a new run reverts the override to the configured value', () => {
    const w = world({ notifyAccess: 'all' });
    w.send('NOTIFYACCESS=none');
    expect(w.c.notifyAccess()).toBe('none');
    w.c.startRun(10, APP);
    expect(w.c.notifyAccess()).toBe('all');
  });
});

describe('runs without the launcher (unit/instance.ts)', () => {
  const A = 'a'.repeat(64);
  const B = 'b'.repeat(64);
  function hooked(mainAlive = false) {
    const w = world({ notifyAccess: 'all' }, null);
    const started: number[] = [];
    w.ctx.runs = {
      mainAlive: () => mainAlive,
      newMainProcess: (c, pid) => {
        started.push(pid);
        c.startRun(0, null);
      },
      agentInstance: null,
    };
    const procs = w.ctx.procs as FakeProcs;
    procs.table.set(APP, { cgroup: `0::/kubepods/pod1/${A}\n`, alive: true });
    procs.table.set(HELPER, { cgroup: `0::/kubepods/pod1/${B}\n`, alive: true });
    return { w, started };
  }

  it('the first sender names the run\'s start; a sender of another start begins a new run before it is applied (N4.6)', () => {
    const { w, started } = hooked();
    w.send('NOTIFYACCESS=none', sender(APP));
    expect(w.c.run.instance).toBe(A);
    w.send('READY=1', sender(HELPER));
    expect(started).toEqual([HELPER]);
    expect(w.c.run.phase).toBe('ready');
    expect(w.c.run.instance).toBe(B);
    expect(w.c.notifyAccess()).toBe('all');
  });

  it('not while the run\'s main process is alive', () => {
    const { w, started } = hooked(true);
    w.send('READY=1', sender(APP));
    w.send('STOPPING=1', sender(HELPER));
    expect(started).toEqual([]);
    expect(w.c.run.phase).toBe('stopping');
  });
});

describe('A2.9 MAINPID=', () => {
  it('A2.9: a pid in the sender\'s container is accepted from any uid', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${HELPER}`, sender(APP, 1000));
    expect(w.c.run.mainPid).toBe(HELPER);
    expect(w.obs.events).toContainEqual(['mainPid', 'app', HELPER]);
  });

  it('A2.9: mainPidChanged is told about the new main pid', () => {
    const w = world({ notifyAccess: 'all' });
    const seen: number[] = [];
    w.ctx.mainPidChanged = (_c, pid) => seen.push(pid);
    w.send(`MAINPID=${HELPER}`);
    expect(seen).toEqual([HELPER]);
  });

  it('A2.9: MAINPID= never seeds an identity: the run\'s start is not taken from its target', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${HELPER}`);
    expect(w.c.run.instance).toBeNull();
  });

  it.each([
    ['0', /pid > 1/],
    ['1', /pid > 1/],
    ['-5', /pid > 1/],
    ['abc', /pid > 1/],
    ['', /pid > 1/],
    [String(SELF), /agent/],
    [String(ZOMBIE), /not alive/],
    ['999999', /not alive/],
  ])('A2.9: MAINPID=%s is refused', (value, why) => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${value}`, sender(APP, 0));
    expect(w.c.run.mainPid).toBe(APP);
    expect(w.obs.events).toContainEqual(['warn', 'app', 'MAINPID= refused', { value, why: expect.stringMatching(why) }]);
    expect(w.obs.kinds()).not.toContain('mainPid');
  });

  it('A2.9: a pid in another container is refused for a non-root sender', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${STRANGER}`, sender(APP, 1000));
    expect(w.c.run.mainPid).toBe(APP);
    expect(w.obs.warnings()).toEqual(['MAINPID= refused']);
  });

  it('A2.9: a pid in another container is accepted when the sender\'s uid is 0', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${STRANGER}`, sender(APP, 0));
    expect(w.c.run.mainPid).toBe(STRANGER);
  });

  it('A2.9: an unreadable cgroup counts as outside (refused unless uid 0)', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${UNREADABLE}`, sender(APP, 1000));
    expect(w.c.run.mainPid).toBe(APP);
    w.send(`MAINPID=${UNREADABLE}`, sender(APP, 0));
    expect(w.c.run.mainPid).toBe(UNREADABLE);
  });

  it('A2.9: the current main pid again is a silent no-op', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${APP}`);
    expect(w.obs.kinds()).toEqual(['accepted']);
  });

  it('A2.9 (deviation): a pid-0 sender cannot set MAINPID', () => {
    const w = world({ notifyAccess: 'all' });
    w.send(`MAINPID=${HELPER}`, sender(0, 0));
    expect(w.c.run.mainPid).toBe(APP);
    expect(w.obs.warnings()).toEqual(['MAINPID= refused']);
  });

  it('A2.9: authorization uses the current main pid, then the change applies to later messages', () => {
    const w = world({ notifyAccess: 'main' });
    expect(w.send(`MAINPID=${HELPER}`, sender(HELPER)).ok).toBe(false);
    expect(w.c.run.mainPid).toBe(APP);
    expect(w.send(`MAINPID=${HELPER}\nSTATUS=handover`, sender(APP)).ok).toBe(true);
    expect(w.c.run.mainPid).toBe(HELPER);
    expect(w.send('STATUS=old', sender(APP)).ok).toBe(false);
    expect(w.send('STATUS=new', sender(HELPER)).ok).toBe(true);
    expect(w.c.run.status).toBe('new');
  });

  it('A2.9: MAINPID with an unknown main pid (access all) sets it', () => {
    const w = world({ notifyAccess: 'all' }, null);
    w.send(`MAINPID=${APP}`, sender(HELPER));
    expect(w.c.run.mainPid).toBe(APP);
  });
});

describe('A2.1-A2.3 READY, RELOADING, STOPPING', () => {
  it('A2.1: READY=1 makes the run ready, clears the start deadline and arms the watchdog', () => {
    const w = world({ watchdogSec: 10, timeoutStartSec: 30 });
    w.ctx.nowMs = 1000;
    w.send('READY=1');
    expect(w.c.run.phase).toBe('ready');
    expect(w.c.run.startDeadlineMs).toBeNull();
    expect(w.c.run.watchdogDeadlineMs).toBe(11_000);
    expect(w.obs.events).toContainEqual(['stateChanged', 'app', 'ready']);
  });

  it('D1.22: READY=0 and "READY=1 " change nothing', () => {
    const w = world();
    w.send('READY=0');
    w.send('READY=1 ');
    expect(w.c.run.phase).toBe('starting');
    expect(w.obs.kinds()).not.toContain('stateChanged');
  });

  it('A2.2: RELOADING=1 then READY=1', () => {
    const w = world();
    w.send('READY=1');
    w.send('RELOADING=1');
    expect(w.c.run.phase).toBe('reloading');
    w.send('READY=1');
    expect(w.c.run.phase).toBe('ready');
  });

  it('A2.2: RELOADING=1 before READY=1 is ignored with a warning, no state change', () => {
    const w = world();
    w.send('RELOADING=1');
    expect(w.c.run.phase).toBe('starting');
    expect(w.c.run.readiness().ok).toBe(false);
    expect(w.obs.warnings()).toContain('RELOADING=1 before READY=1, ignoring');
    expect(w.obs.kinds()).not.toContain('stateChanged');
  });

  it('A2.3: STOPPING=1 wins over READY=1 and RELOADING=1 in the same datagram', () => {
    const w = world();
    w.send('READY=1\nRELOADING=1\nSTOPPING=1');
    expect(w.c.run.phase).toBe('stopping');
    expect(w.obs.events).toContainEqual(['stateChanged', 'app', 'stopping']);
  });

  it('A2.3: STOPPING=1 is final for the run: later READY/RELOADING are ignored', () => {
    const w = world();
    w.send('READY=1');
    w.send('STOPPING=1');
    w.send('READY=1');
    expect(w.c.run.phase).toBe('stopping');
    w.send('RELOADING=1');
    expect(w.c.run.phase).toBe('stopping');
    expect(w.c.run.readiness().ok).toBe(false);
  });

  it('A2.3: the next run starts fresh and READY=1 works again', () => {
    const w = world();
    w.send('STOPPING=1');
    w.c.startRun(50, APP);
    expect(w.c.run.phase).toBe('starting');
    w.send('READY=1');
    expect(w.c.run.phase).toBe('ready');
  });
});

describe('A2.5 STATUS=', () => {
  it('A2.5: sets the status; UTF-8 is decoded', () => {
    const w = world();
    w.send(Buffer.from('STATUS=prêt ✓', 'utf8'));
    expect(w.c.run.status).toBe('prêt ✓');
  });

  it('A2.5: an empty value clears it', () => {
    const w = world();
    w.send('STATUS=busy');
    w.send('STATUS=');
    expect(w.c.run.status).toBeNull();
  });

  it('A2.5: invalid UTF-8 warns and clears the previous status', () => {
    const w = world();
    w.send('STATUS=busy');
    w.send(Buffer.concat([Buffer.from('STATUS=bad '), Buffer.from([0xff, 0xfe])]));
    expect(w.c.run.status).toBeNull();
    expect(w.obs.warnings()).toEqual([expect.stringMatching(/UTF-8/)]);
  });

  it('A2.5: a message without STATUS= leaves it alone', () => {
    const w = world();
    w.send('STATUS=busy');
    w.send('READY=1');
    expect(w.c.run.status).toBe('busy');
  });

  it('D1.23: the first STATUS= line wins', () => {
    const w = world();
    w.send('STATUS=one\nSTATUS=two');
    expect(w.c.run.status).toBe('one');
  });
});

describe('A2.6 ERRNO=', () => {
  it.each([
    ['ENOENT', 2],
    ['EADDRINUSE', 98],
    ['0', 0],
    ['42', 42],
    ['4095', 4095],
  ])('A2.6: ERRNO=%s -> %i', (v, n) => {
    const w = world();
    w.send(`ERRNO=${v}`);
    expect(w.c.run.errno).toBe(n);
  });

  it.each(['4096', 'EBOGUS', '-1', '', 'enoent'])('A2.6: ERRNO=%s warns and keeps the old value', (v) => {
    const w = world();
    w.send('ERRNO=5');
    w.send(`ERRNO=${v}`);
    expect(w.c.run.errno).toBe(5);
    expect(w.obs.warnings()).toEqual([expect.stringMatching(/ERRNO/)]);
  });
});

describe('A2.10-A2.13 watchdog and timeouts', () => {
  it('A2.10: WATCHDOG=1 re-arms from now and records the ping', () => {
    const w = world({ watchdogSec: 5 });
    w.send('READY=1');
    w.ctx.nowMs = 3000;
    w.send('WATCHDOG=1');
    expect(w.c.run.lastPingMs).toBe(3000);
    expect(w.c.run.watchdogDeadlineMs).toBe(8000);
    expect(w.obs.kinds()).toContain('watchdogPing');
  });

  it('A2.10: WATCHDOG= with another value warns and does nothing', () => {
    const w = world({ watchdogSec: 5 });
    w.send('READY=1');
    w.ctx.nowMs = 3000;
    w.send('WATCHDOG=yes');
    expect(w.c.run.watchdogDeadlineMs).toBe(5000);
    expect(w.obs.warnings()).toEqual([expect.stringMatching(/WATCHDOG=/)]);
  });

  it('A2.11: WATCHDOG=trigger fails liveness at once, even with no watchdog configured', () => {
    const w = world({ watchdogSec: 0 });
    w.send('WATCHDOG=trigger');
    expect(w.c.run.liveness().ok).toBe(false);
    expect(w.obs.events).toContainEqual(['watchdogFailed', 'app', 'trigger']);
  });

  it('A2.12: WATCHDOG_USEC= overrides the timeout and arms from now', () => {
    const w = world({ watchdogSec: 0 });
    w.ctx.nowMs = 1000;
    w.send('WATCHDOG_USEC=5000000');
    expect(w.c.run.watchdogMs()).toBe(5000);
    expect(w.c.run.watchdogDeadlineMs).toBe(6000);
  });

  it.each(['0', '18446744073709551615'])('A2.12: WATCHDOG_USEC=%s disables the watchdog for this run', (v) => {
    const w = world({ watchdogSec: 10 });
    w.send('READY=1');
    expect(w.c.run.watchdogDeadlineMs).toBe(10_000);
    w.send(`WATCHDOG_USEC=${v}`);
    expect(w.c.run.watchdogMs()).toBeNull();
    expect(w.c.run.watchdogDeadlineMs).toBeNull();
    w.send('WATCHDOG=1');
    expect(w.c.run.watchdogDeadlineMs).toBeNull();
    expect(w.c.run.tick(1e12)).toBeNull();
  });

  it.each(['30s', 'infinity', '-1', ''])('A2.12: WATCHDOG_USEC=%s is rejected with a warning', (v) => {
    const w = world({ watchdogSec: 10 });
    w.send('READY=1');
    w.send(`WATCHDOG_USEC=${v}`);
    expect(w.c.run.watchdogUsecOverride).toBeNull();
    expect(w.c.run.watchdogMs()).toBe(10_000);
    expect(w.obs.warnings()).toEqual([expect.stringMatching(/WATCHDOG_USEC/)]);
  });

  it('A2.12: WATCHDOG= and WATCHDOG_USEC= in one message: the new timeout wins', () => {
    const w = world({ watchdogSec: 10 });
    w.ctx.nowMs = 100;
    w.send('WATCHDOG_USEC=2000000\nWATCHDOG=1');
    expect(w.c.run.watchdogDeadlineMs).toBe(2100);
  });

  it('A2.12/N4.6: the override is cleared by the next run', () => {
    const w = world({ watchdogSec: 10 });
    w.send('WATCHDOG_USEC=0');
    w.c.startRun(0, APP);
    expect(w.c.run.watchdogMs()).toBe(10_000);
  });

  it('A2.13: EXTEND_TIMEOUT_USEC pushes the start deadline, never shortens it', () => {
    const w = world({ timeoutStartSec: 10 });
    expect(w.c.run.startDeadlineMs).toBe(10_000);
    w.ctx.nowMs = 1000;
    w.send('EXTEND_TIMEOUT_USEC=1000000');
    expect(w.c.run.startDeadlineMs).toBe(10_000);
    w.send('EXTEND_TIMEOUT_USEC=30000000');
    expect(w.c.run.startDeadlineMs).toBe(31_000);
    w.ctx.nowMs = 2000;
    w.send('EXTEND_TIMEOUT_USEC=5000000');
    expect(w.c.run.startDeadlineMs).toBe(31_000);
  });

  it('A2.13: EXTEND_TIMEOUT_USEC pushes the watchdog deadline too', () => {
    const w = world({ watchdogSec: 5 });
    w.send('READY=1');
    w.ctx.nowMs = 1000;
    w.send('EXTEND_TIMEOUT_USEC=20000000');
    expect(w.c.run.watchdogDeadlineMs).toBe(21_000);
    w.send('EXTEND_TIMEOUT_USEC=1000000');
    expect(w.c.run.watchdogDeadlineMs).toBe(21_000);
  });

  it('A2.13: 0 has no effect; no timer means no effect', () => {
    const w = world({ timeoutStartSec: 10 });
    w.ctx.nowMs = 9000;
    w.send('EXTEND_TIMEOUT_USEC=0');
    expect(w.c.run.startDeadlineMs).toBe(10_000);
    const idle = world({ timeoutStartSec: 0, watchdogSec: 0 });
    idle.send('EXTEND_TIMEOUT_USEC=60000000');
    expect(idle.c.run.startDeadlineMs).toBeNull();
    expect(idle.c.run.watchdogDeadlineMs).toBeNull();
    expect(idle.c.run.nextDeadlineMs()).toBeNull();
  });

  it('A2.13: an unparsable value warns', () => {
    const w = world({ timeoutStartSec: 10 });
    w.send('EXTEND_TIMEOUT_USEC=10s');
    expect(w.c.run.startDeadlineMs).toBe(10_000);
    expect(w.obs.warnings()).toEqual([expect.stringMatching(/EXTEND_TIMEOUT_USEC/)]);
  });
});

describe('F3 store through notify messages', () => {
  it('F3.5: FDSTORE=1 stores the fds under FDNAME', () => {
    const w = world();
    const { fds } = w.send('FDSTORE=1\nFDNAME=web', sender(APP), 2);
    expect(w.c.store.list().map((e) => [e.fd, e.name, e.poll])).toEqual(fds.map((fd) => [fd, 'web', true]));
    expect(w.obs.events).toContainEqual(['stored', 'app', 2, 'web']);
    expectOwnership(w);
  });

  it('F3.13: without FDNAME= the name is "stored"', () => {
    const w = world();
    w.send('FDSTORE=1', sender(APP), 1);
    expect(w.c.store.list()[0]!.name).toBe('stored');
  });

  it.each([
    ['255 bytes', 'n'.repeat(255), 'n'.repeat(255)],
    ['empty', '', ''],
    ['spaces and punctuation', 'a b-c.d/e', 'a b-c.d/e'],
    ['256 bytes', 'n'.repeat(256), 'stored'],
    ['a colon', 'a:b', 'stored'],
    ['DEL 0x7f', 'a\x7f', 'stored'],
    ['a tab', 'a\tb', 'stored'],
    ['a byte >= 0x80', 'caf\xe9', 'stored'],
  ])('F3.13/F3.14: FDNAME with %s is stored as the right name', (_what, fdname, want) => {
    const w = world();
    w.send(`FDSTORE=1\nFDNAME=${fdname}`, sender(APP), 1);
    expect(w.c.store.list().map((e) => e.name)).toEqual([want]);
    expect(w.obs.warnings()).toEqual(want === 'stored' ? [expect.stringMatching(/FDNAME= is invalid/)] : []);
    expectOwnership(w);
  });

  it('F3.15: one FDNAME applies to every fd of the message', () => {
    const w = world();
    w.send('FDSTORE=1\nFDNAME=x', sender(APP), 3);
    expect(w.c.store.list().map((e) => e.name)).toEqual(['x', 'x', 'x']);
  });

  it('F3.17: FDPOLL=0 stores unpolled without touching epoll', () => {
    const w = world();
    w.send('FDSTORE=1\nFDPOLL=0', sender(APP), 1);
    expect(w.c.store.list()[0]!.poll).toBe(false);
    expect(w.k.log.filter((l) => l.startsWith('pollAdd'))).toEqual([]);
  });

  it('F3.6/D1.28: fds without FDSTORE=1 are closed as not_stored', () => {
    const w = world();
    w.send('READY=1\nFDNAME=x', sender(APP), 2);
    expect(w.c.store.size).toBe(0);
    expect(w.c.run.phase).toBe('ready');
    expect(w.obs.drops()).toEqual({ not_stored: 2 });
    expectOwnership(w);
  });

  it('D1.18: an empty message with fds is accepted and its fds closed', () => {
    const w = world();
    const r = w.send('', sender(APP), 2);
    expect(r.ok).toBe(true);
    expect(w.obs.drops()).toEqual({ not_stored: 2 });
    expectOwnership(w);
  });

  it('F3.8/F3.10: the limit: extra fds closed as over_limit, reported with the max', () => {
    const w = world({ fileDescriptorStoreMax: 2 });
    w.send('FDSTORE=1', sender(APP), 3);
    expect(w.c.store.size).toBe(2);
    expect(w.obs.events).toContainEqual(['dropped', 'app', 'over_limit', 1, { max: 2 }]);
    expectOwnership(w);
    const zero = world({ fileDescriptorStoreMax: 0 });
    zero.send('FDSTORE=1', sender(APP), 2);
    expect(zero.obs.drops()).toEqual({ over_limit: 2 });
    expectOwnership(zero);
  });

  it('F3.11: an already-stored fd re-sent to a full store counts over_limit', () => {
    const w = world({ fileDescriptorStoreMax: 1 });
    const { fds } = w.send('FDSTORE=1', sender(APP), 1);
    w.obs.clear();
    w.send('FDSTORE=1', sender(APP), [w.k.dup(fds[0]!)]);
    expect(w.obs.drops()).toEqual({ over_limit: 1 });
    expectOwnership(w);
  });

  it('F3.12: a duplicate keeps the first name; dedupe also within one message', () => {
    const w = world();
    const { fds } = w.send('FDSTORE=1\nFDNAME=first', sender(APP), 1);
    const a = fds[0]!;
    w.obs.clear();
    w.send('FDSTORE=1\nFDNAME=second\nFDPOLL=0', sender(APP), [w.k.dup(a), w.k.dup(a)]);
    expect(w.c.store.list()).toEqual([expect.objectContaining({ fd: a, name: 'first', poll: true })]);
    expect(w.obs.drops()).toEqual({ duplicate: 2 });
    expect(w.obs.kinds()).not.toContain('stored');
    expectOwnership(w);
  });

  it('F3.16: EPERM from epoll stores unpolled; another errno stops the add and reports the error', () => {
    const w = world();
    w.k.pollResult = () => -EPERM;
    w.send('FDSTORE=1', sender(APP), 1);
    expect(w.c.store.list()[0]!.poll).toBe(false);
    w.k.pollResult = () => -EBADF;
    w.obs.clear();
    w.send('FDSTORE=1', sender(APP), 2);
    expect(w.c.store.size).toBe(1);
    expect(w.obs.events).toContainEqual(['dropped', 'app', 'error', 2, { error: 'epoll registration failed (errno 9)' }]);
    expectOwnership(w);
  });

  it('F3.19: FDSTOREREMOVE=1 removes every entry with that name', () => {
    const w = world();
    w.send('FDSTORE=1\nFDNAME=x', sender(APP), 2);
    w.send('FDSTORE=1\nFDNAME=y', sender(APP), 1);
    w.obs.clear();
    w.send('FDSTOREREMOVE=1\nFDNAME=x');
    expect(w.c.store.list().map((e) => e.name)).toEqual(['y']);
    expect(w.obs.events).toEqual([['accepted', 'app'], ['dropped', 'app', 'removed', 2, { fdname: 'x' }]]);
    expectOwnership(w);
  });

  it('F3.19: pollDel comes before close for each removed entry', () => {
    const w = world();
    const { fds } = w.send('FDSTORE=1\nFDNAME=x', sender(APP), 2);
    w.k.log.length = 0;
    w.send('FDSTOREREMOVE=1\nFDNAME=x');
    expect(w.k.log).toEqual([`pollDel ${fds[0]}`, `close ${fds[0]}`, `pollDel ${fds[1]}`, `close ${fds[1]}`]);
  });

  it('F3.19: FDNAME= (empty) removes exactly the empty-named entries', () => {
    const w = world();
    w.send('FDSTORE=1\nFDNAME=', sender(APP), 1);
    w.send('FDSTORE=1', sender(APP), 1);
    w.send('FDSTOREREMOVE=1\nFDNAME=');
    expect(w.c.store.list().map((e) => e.name)).toEqual(['stored']);
  });

  it.each(['FDSTOREREMOVE=1', 'FDSTOREREMOVE=1\nFDNAME=a:b', `FDSTOREREMOVE=1\nFDNAME=${'x'.repeat(256)}`])(
    'F3.19: %j (no valid FDNAME) warns and removes nothing',
    (text) => {
      const w = world();
      w.send('FDSTORE=1', sender(APP), 1);
      w.send('FDSTORE=1\nFDNAME=a:b', sender(APP), 1);
      w.send(text);
      expect(w.c.store.size).toBe(2);
      expect(w.obs.warnings()).toContainEqual(expect.stringMatching(/FDSTOREREMOVE=1 without a valid FDNAME/));
    },
  );

  it('F3.19: no match is silent', () => {
    const w = world();
    w.send('FDSTORE=1\nFDNAME=a', sender(APP), 1);
    w.obs.clear();
    w.send('FDSTOREREMOVE=1\nFDNAME=b');
    expect(w.obs.events).toEqual([['accepted', 'app']]);
  });

  it('F3.7: FDSTOREREMOVE=1 wins over FDSTORE=1: removal runs, the fds are closed', () => {
    const w = world();
    const { fds: old } = w.send('FDSTORE=1\nFDNAME=x', sender(APP), 1);
    w.obs.clear();
    const { fds } = w.send('FDSTORE=1\nFDSTOREREMOVE=1\nFDNAME=x', sender(APP), 2);
    expect(w.c.store.size).toBe(0);
    for (const fd of [...old, ...fds]) expect(w.k.closed(fd)).toBe(1);
    expect(w.obs.drops()).toEqual({ removed: 1, not_stored: 2 });
    expectOwnership(w);
  });

  it('F3.7: the fds of a FDSTOREREMOVE=1 message are closed even when the name is invalid', () => {
    const w = world();
    w.send('FDSTORE=1\nFDSTOREREMOVE=1', sender(APP), 2);
    expect(w.c.store.size).toBe(0);
    expect(w.obs.drops()).toEqual({ not_stored: 2 });
    expectOwnership(w);
  });

  it('spec §2 order: state and timers apply even when the store add fails', () => {
    const w = world({ fileDescriptorStoreMax: 0 });
    w.send('READY=1\nSTATUS=up\nERRNO=3\nFDSTORE=1', sender(APP), 1);
    expect(w.c.run.phase).toBe('ready');
    expect(w.c.run.status).toBe('up');
    expect(w.c.run.errno).toBe(3);
    expectOwnership(w);
  });
});

describe('N4.6 a new run', () => {
  it('N4.6: resets phase, status, errno and overrides, but not the store', () => {
    const w = world({ notifyAccess: 'all', watchdogSec: 10 });
    const { fds } = w.send(
      'READY=1\nSTATUS=serving\nERRNO=ENOENT\nNOTIFYACCESS=main\nWATCHDOG_USEC=1000000\nFDSTORE=1\nFDNAME=keep',
      sender(APP),
      2,
    );
    const before = w.c.run;
    const next = w.c.startRun(500, HELPER);
    expect(next).not.toBe(before);
    expect(next.id).toBeGreaterThan(before.id);
    expect(next.phase).toBe('starting');
    expect(next.status).toBeNull();
    expect(next.errno).toBeNull();
    expect(next.notifyAccessOverride).toBeNull();
    expect(next.watchdogUsecOverride).toBeNull();
    expect(next.watchdogMs()).toBe(10_000);
    expect(next.mainPid).toBe(HELPER);
    expect(w.c.notifyAccess()).toBe('all');
    expect(w.c.store.list().map((e) => e.fd)).toEqual(fds);
    expectOwnership(w);
  });
});


const LINES = [
  'FDSTORE=1',
  'FDSTORE=1',
  'FDSTOREREMOVE=1',
  'FDNAME=a',
  'FDNAME=b',
  'FDNAME=',
  'FDNAME=bad:name',
  'FDPOLL=0',
  'READY=1',
  'STOPPING=1',
  'STATUS=x',
  'NOTIFYACCESS=main',
  'NOTIFYACCESS=all',
  'NOTIFYACCESS=none',
  'NOTIFYACCESS=bogus',
  `MAINPID=${HELPER}`,
  `MAINPID=${APP}`,
  'WATCHDOG=1',
  'X_JUNK=1',
];
const PIDS = [APP, HELPER, STRANGER, 0];

function pick<T>(rnd: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rnd() * xs.length)]!;
}

function randomFds(w: World, rnd: () => number): number[] {
  return Array.from({ length: Math.floor(rnd() * 5) }, () => {
    const stored = w.c.store.list();
    if (stored.length > 0 && rnd() < 0.3) return w.k.dup(pick(rnd, stored).fd);
    return w.k.openNew();
  });
}

function randomStep(w: World, rnd: () => number): void {
  const r = rnd();
  if (r < 0.85) {
    const text = Array.from({ length: 1 + Math.floor(rnd() * 4) }, () => pick(rnd, LINES)).join('\n');
    w.send(text, sender(pick(rnd, PIDS), rnd() < 0.2 ? 0 : 1000), randomFds(w, rnd));
  } else if (r < 0.95) {
    w.c.store.hangup(Math.floor(rnd() * 100));
  } else {
    w.c.startRun(w.ctx.nowMs, rnd() < 0.5 ? APP : null);
  }
}

describe('D1.28 ownership under random messages (property-style)', () => {
  it.each([11, 12, 13, 14, 15, 16])('seed %i: every fd handed to applyMessage is stored or closed exactly once', (seed) => {
    const rnd = prng(seed);
    const access = pick(rnd, ['main', 'exec', 'all'] as const);
    const w = world({ notifyAccess: access, fileDescriptorStoreMax: Math.floor(rnd() * 8) });
    w.k.pollResult = () => (rnd() < 0.1 ? -EPERM : rnd() < 0.05 ? -EBADF : 0);
    for (let step = 0; step < 300; step++) {
      w.ctx.nowMs += 10;
      randomStep(w, rnd);
      expectOwnership(w);
      expect(w.c.store.size).toBeLessThanOrEqual(w.c.store.max);
    }
    expect(w.k.issued.size).toBeGreaterThan(100);
    w.c.store.clear();
    expectOwnership(w);
    expect(w.k.open.size).toBe(0);
  });
});
