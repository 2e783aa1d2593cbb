/**
 * The status as built from real Containers (real stores on injected StoreOps, real
 * runs): UTF-8-safe truncation of STATUS=, bounded fd groups, the watchdog
 * deadline on the wall clock, and the counts the tally keeps from events.
 */
import { describe, expect, it } from 'vitest';
import { buildStatus, cutUtf8, fdGroups, NO_TALLY, type StatusInput } from '../../src/status/build.js';
import { StatusTally } from '../../src/status/tally.js';
import { STATUS_FD_GROUPS_MAX, STATUS_SCHEMA, STATUS_TEXT_MAX } from '../../src/status/types.js';
import { Container } from '../../src/unit/container.js';
import { DEFAULTS, type ContainerConfig } from '../../src/config/types.js';
import type { FdType } from '../../src/store/describe.js';
import type { Entry, FdStat, StoreOps } from '../../src/store/store.js';

function ops(): StoreOps {
  let id = 0;
  return { sameFile: () => false, pollAdd: () => 0, pollDel: () => {}, close: () => {}, nextId: () => ++id };
}

let ino = 0;
function stats(n: number): FdStat[] {
  return Array.from({ length: n }, () => ({ dev: 1, ino: ++ino, mode: 0o140777, flags: 2 }));
}

function container(cfg: Partial<ContainerConfig> = {}): Container {
  return new Container({ ...DEFAULTS, name: 'app', ...cfg }, ops(), 1_000);
}

/** Stores n fds named `name` (fd numbers from firstFd). */
function store(c: Container, name: string, n: number, firstFd: number): void {
  const fds = Array.from({ length: n }, (_, k) => firstFd + k);
  c.store.add(fds, stats(n), name, true);
}

function input(cs: Container[], over: Partial<StatusInput> = {}): StatusInput {
  return {
    generation: 7,
    agent: { version: '1.2.3', startedAt: '2026-01-01T00:00:00.000Z', instance: 'i' },
    config: { policy: null, hash: null, loadedAt: '2026-01-01T00:00:00.000Z', error: null, reloads: 0, rejected: 0 },
    containers: cs,
    tally: () => NO_TALLY,
    typeOf: () => 'unix',
    monoNowMs: 5_000,
    wallNowMs: Date.UTC(2026, 0, 2, 3, 4, 5, 0),
    ...over,
  };
}

describe('cutUtf8', () => {
  it('keeps text within the limit as it is', () => {
    expect(cutUtf8('ready: 3 workers', STATUS_TEXT_MAX)).toBe('ready: 3 workers');
    expect(cutUtf8('a'.repeat(256), 256)).toBe('a'.repeat(256));
  });

  it('cuts at the limit in bytes, not characters', () => {
    expect(cutUtf8('a'.repeat(300), 256)).toBe('a'.repeat(256));
    // 2-byte characters: 256 bytes are exactly 128 of them.
    expect(cutUtf8('é'.repeat(200), 256)).toBe('é'.repeat(128));
  });

  it('never cuts inside a character: the partial one is left out', () => {
    // 1 + 127*2 = 255 bytes; the next é would end at byte 257.
    expect(cutUtf8(`a${'é'.repeat(200)}`, 256)).toBe(`a${'é'.repeat(127)}`);
    // 3-byte (€) and 4-byte (😀) characters straddling the limit.
    expect(cutUtf8(`ab${'€'.repeat(100)}`, 256)).toBe(`ab${'€'.repeat(84)}`); // 2 + 252 = 254
    expect(cutUtf8(`abc${'😀'.repeat(100)}`, 256)).toBe(`abc${'😀'.repeat(63)}`); // 3 + 252 = 255
    for (let pre = 0; pre < 4; pre++) {
      const out = cutUtf8('x'.repeat(pre) + '😀'.repeat(100), 256);
      expect(Buffer.byteLength(out)).toBeLessThanOrEqual(256);
      expect(Buffer.byteLength(out)).toBeGreaterThan(252);
      expect(out).not.toContain('\ufffd');
    }
  });
});

describe('fdGroups', () => {
  const entry = (id: number, name: string): Entry => ({ id, fd: id, name, poll: true, dev: 1, ino: id, mode: 0, flags: 0 });

  it('counts by (name, type), largest first, ties by name then type', () => {
    const types = new Map<number, FdType>();
    const es: Entry[] = [];
    let id = 0;
    const add = (name: string, type: FdType, n: number): void => {
      for (let k = 0; k < n; k++) {
        es.push(entry(++id, name));
        types.set(id, type);
      }
    };
    add('conn', 'tcp', 5);
    add('web', 'tcp_listen', 1);
    add('state', 'memfd', 2);
    add('conn', 'unix', 2);
    add('b', 'pipe', 1);
    expect(fdGroups(es, (e) => types.get(e.id)!)).toEqual({
      groups: [
        { name: 'conn', type: 'tcp', count: 5 },
        { name: 'conn', type: 'unix', count: 2 },
        { name: 'state', type: 'memfd', count: 2 },
        { name: 'b', type: 'pipe', count: 1 },
        { name: 'web', type: 'tcp_listen', count: 1 },
      ],
      omitted: 0,
    });
  });

  it(`keeps the ${STATUS_FD_GROUPS_MAX} largest groups and counts the rest`, () => {
    const es: Entry[] = [];
    let id = 0;
    // 40 groups: group k has k+1 fds, so the kept ones are the 16 largest (24..39).
    for (let k = 0; k < 40; k++) for (let j = 0; j <= k; j++) es.push(entry(++id, `g${String(k).padStart(2, '0')}`));
    const { groups, omitted } = fdGroups(es, () => 'unix');
    expect(groups).toHaveLength(STATUS_FD_GROUPS_MAX);
    expect(omitted).toBe(40 - STATUS_FD_GROUPS_MAX);
    expect(groups[0]).toEqual({ name: 'g39', type: 'unix', count: 40 });
    expect(groups.at(-1)).toEqual({ name: 'g24', type: 'unix', count: 25 });
  });

  it('asks for each entry type once per build and nothing for an empty store', () => {
    let asked = 0;
    expect(fdGroups([], () => (asked++, 'unix'))).toEqual({ groups: [], omitted: 0 });
    fdGroups([entry(1, 'a'), entry(2, 'a')], () => (asked++, 'unix'));
    expect(asked).toBe(2);
  });
});

describe('buildStatus', () => {
  it('shows a container as the store and the run say, STATUS= cut, listen without addresses', () => {
    const c = container({ fileDescriptorStoreMax: 10, listen: [{ name: 'web', kind: 'tcp', address: '127.0.0.1:8080', backlog: 4096, reusePort: false }] });
    store(c, 'conn', 3, 100);
    c.run.ready(2_000);
    c.run.status = `x${'é'.repeat(300)}`;
    c.run.errno = 5;
    c.starts = 2;
    c.restores = 1;
    c.restoreFailures = 1;
    const s = buildStatus(input([c]));
    expect(s.schema).toBe(STATUS_SCHEMA);
    expect(s.generation).toBe(7);
    expect(s.containers).toEqual([
      {
        name: 'app',
        state: 'ready',
        ready: true,
        readyReason: 'ready',
        live: true,
        liveReason: 'ok',
        stored: 3,
        max: 10,
        fdGroups: [{ name: 'conn', type: 'unix', count: 3 }],
        fdGroupsOmitted: 0,
        restores: 1,
        restoreFailures: 1,
        starts: 2,
        lastRestore: null,
        overLimit: 0,
        status: `x${'é'.repeat(127)}`,
        errno: 5,
        watchdog: { sec: 0, deadline: null, failures: 0, startTimeouts: 0 },
        listen: [{ name: 'web', kind: 'tcp' }],
      },
    ]);
    expect(JSON.stringify(s)).not.toContain('127.0.0.1');
  });

  it('puts the watchdog deadline on the wall clock, and drops it once the watchdog failed', () => {
    const c = container({ watchdogSec: 30 });
    c.run.ready(4_000); // deadline at mono 34,000: 29 s after mono now (5,000)
    const s = buildStatus(input([c]));
    expect(s.containers[0]!.watchdog).toEqual({ sec: 30, deadline: '2026-01-02T03:04:34.000Z', failures: 0, startTimeouts: 0 });
    c.run.trigger();
    c.run.ping(4_500); // a ping after the failure re-arms a deadline nothing enforces
    expect(buildStatus(input([c])).containers[0]!.watchdog.deadline).toBeNull();
    c.run.watchdogUsecOverride = 1_500_000n;
    expect(buildStatus(input([c])).containers[0]!.watchdog.sec).toBe(1.5);
  });

  it('reads overLimit, watchdog failures, start timeouts and the last restore from the tally', () => {
    let wall = Date.UTC(2026, 5, 1, 12, 0, 0, 250);
    const t = new StatusTally(() => wall);
    t.observer.dropped('app', 'over_limit', 3, {});
    t.observer.dropped('app', 'duplicate', 9, {});
    t.observer.dropped('app', 'over_limit', 2, {});
    t.observer.watchdogFailed('app', 'timeout');
    t.observer.watchdogFailed('app', 'trigger');
    t.observer.watchdogFailed('app', 'start_timeout');
    t.observer.restored('app', 4, 0.01);
    wall += 1_000;
    t.observer.restored('app', 6, 0.01);
    const c = container();
    const s = buildStatus(input([c], { tally: (n) => t.get(n) })).containers[0]!;
    expect(s.overLimit).toBe(5);
    expect(s.watchdog.failures).toBe(2);
    expect(s.watchdog.startTimeouts).toBe(1);
    expect(s.lastRestore).toEqual({ at: '2026-06-01T12:00:01.250Z', fds: 6 });
    expect(t.get('other')).toEqual(NO_TALLY);
  });
});
