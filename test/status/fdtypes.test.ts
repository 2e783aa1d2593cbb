/**
 * The per-entry fd type cache shared by /status and /metrics: each entry told once,
 * failures not cached, and warm() typing a burst of new entries a chunk per turn,
 * skipping entries that left their store (their fd number may be another file's).
 */
import { describe, expect, it } from 'vitest';
import { FdTypeCache } from '../../src/status/fdtypes.js';
import { FdStore, type FdStat } from '../../src/store/store.js';
import type { FdType } from '../../src/store/describe.js';

function store(n: number): FdStore {
  let id = 0;
  const s = new FdStore('app', 10_000, { sameFile: () => false, pollAdd: () => 0, pollDel: () => {}, close: () => {}, nextId: () => ++id });
  const stats: FdStat[] = Array.from({ length: n }, (_, k) => ({ dev: 1, ino: k + 1, mode: 0o140777, flags: 2 }));
  s.add(Array.from({ length: n }, (_, k) => 100 + k), stats, 'x', true);
  return s;
}

describe('FdTypeCache', () => {
  it('tells each entry once; a failure is counted as other and asked again next time', () => {
    const told: number[] = [];
    let fail = true;
    const cache = new FdTypeCache((e) => {
      told.push(e.fd);
      return e.fd === 101 && fail ? null : 'unix';
    }, async () => {});
    const s = store(2);
    const [a, b] = s.list();
    expect([cache.typeOf(a!), cache.typeOf(b!), cache.typeOf(a!), cache.typeOf(b!)]).toEqual(['unix', 'other', 'unix', 'other']);
    fail = false;
    expect(cache.lookup(b!)).toBe('unix');
    expect(cache.lookup(b!)).toBe('unix');
    expect(told).toEqual([100, 101, 101, 101]);
  });

  it('warm() types new entries a chunk per turn and skips entries that left the store', async () => {
    const perTurn: number[] = [0];
    const told: number[] = [];
    const s = store(10);
    const cache = new FdTypeCache((e): FdType => {
      told.push(e.fd);
      perTurn[perTurn.length - 1]!++;
      return 'unix';
    }, async () => {
      perTurn.push(0);
      if (perTurn.length === 2) s.hangup(s.list().find((e) => e.fd === 107)!.id);
    });
    cache.typeOf(s.list()[0]!); // already cached: not told again
    told.length = 0;
    perTurn[0] = 0;
    await cache.warm([s], 3);
    expect(perTurn).toEqual([3, 3, 2]);
    expect(told).toEqual([101, 102, 103, 104, 105, 106, 108, 109]);
    told.length = 0;
    await cache.warm([s], 3);
    expect(told).toEqual([]);
  });
});
