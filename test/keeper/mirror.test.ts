/**
 * The mirror (src/keeper/mirror.ts) against a model keeper: random adds, re-adds,
 * removes, reused fd numbers, resyncs and flushes; after every flush, the keeper
 * the messages built holds exactly the live fds (with their metadata), and no fd
 * removed before the flush was ever sent (its number may have been closed).
 */
import { describe, expect, it } from 'vitest';
import { Mirror, MirrorFullError } from '../../src/keeper/mirror.js';
import { KEEPER_FDS_PER_MSG, KEEPER_MSG_MAX, type Message } from '../../src/keeper/wire.js';
import { prng } from '../helpers/prng.js';

/** What a keeper would hold after applying the agent's messages (agent/keeper/keeper.c's rules). */
class ModelKeeper {
  readonly slots = new Map<number, { fd: number; meta: number }>();
  readonly metas = new Map<number, string>();
  blob: string | null = null;
  sentFds: number[] = [];

  apply(m: Message): void {
    expect(m.fds.length).toBeLessThanOrEqual(KEEPER_FDS_PER_MSG);
    expect(m.data.length).toBeLessThanOrEqual(KEEPER_MSG_MAX);
    const b = m.data;
    let off = 0;
    let fdAt = 0;
    while (off < b.length) {
      const op = String.fromCharCode(b[off++]!);
      if (op === 'R') {
        this.slots.clear();
        this.metas.clear();
      } else if (op === 'D') {
        const n = b.readUInt16LE(off);
        off += 2;
        for (let k = 0; k < n; k++) {
          const s = b.readUInt32LE(off + 4 * k);
          if (!this.slots.has(s)) throw new Error(`D of slot ${s} the keeper does not hold`);
          this.slots.delete(s);
        }
        off += 4 * n;
      } else if (op === 'M') {
        const id = b.readUInt16LE(off);
        const len = b.readUInt16LE(off + 2);
        this.metas.set(id, b.subarray(off + 4, off + 4 + len).toString('utf8'));
        off += 4 + len;
      } else if (op === 'A') {
        const meta = b.readUInt16LE(off);
        const n = b.readUInt16LE(off + 2);
        off += 4;
        if (!this.metas.has(meta)) throw new Error(`A with metadata ${meta} before its M`);
        for (let k = 0; k < n; k++) {
          const s = b.readUInt32LE(off + 4 * k);
          if (this.slots.has(s)) throw new Error(`A into slot ${s}, which is taken`);
          const fd = m.fds[fdAt++]!;
          this.slots.set(s, { fd, meta });
          this.sentFds.push(fd);
        }
        off += 4 * n;
      } else if (op === 'S') {
        const len = b.readUInt32LE(off);
        this.blob = b.subarray(off + 4, off + 4 + len).toString('utf8');
        off += 4 + len;
      } else {
        throw new Error(`unknown record ${op}`);
      }
    }
    expect(fdAt, 'every fd of the message is in an A record').toBe(m.fds.length);
  }

  /** Held items as "fd meta-text", sorted. */
  held(): string[] {
    return [...this.slots.values()].map((x) => `${x.fd} ${this.metas.get(x.meta)}`).sort();
  }
}

describe('keeper mirror', () => {
  it('random adds, re-adds, removes, resyncs and flushes: the keeper holds exactly the live items; a removed fd is never sent', () => {
    for (const seed of [1, 2, 3, 4]) {
      const r = prng(seed);
      const pick = <T>(a: readonly T[]): T => a[Math.floor(r() * a.length)]!;
      const mirror = new Mirror(1 << 20);
      let keeper = new ModelKeeper();
      /** What the agent holds: fd number -> metadata. */
      const live = new Map<number, string>();
      /** Numbers closed since: the kernel hands the lowest free one out again. */
      const closed: number[] = [];
      let nextFd = 3;
      let removedSinceFlush = new Set<number>();
      const flush = (): void => {
        for (const m of mirror.flush()) keeper.apply(m);
        // A number removed and not added again must not reach the keeper: it may be closed.
        expect(keeper.sentFds.filter((fd) => removedSinceFlush.has(fd) && !live.has(fd)), `fds sent after their removal (seed ${seed})`).toEqual([]);
        keeper.sentFds = [];
        removedSinceFlush = new Set();
        expect(keeper.held(), `seed ${seed}`).toEqual([...live].map(([fd, meta]) => `${fd} ${meta}`).sort());
        expect(mirror.dirty).toBe(false);
      };
      const addBatch = (): void => {
        const n = 1 + Math.floor(r() * (r() < 0.1 ? 300 : 20));
        const meta = pick(['a', 'b', 'c', 'a much longer name of the kind FDNAME= allows']);
        const fds: number[] = [];
        for (let i = 0; i < n; i++) {
          // Now and then a number that is mirrored already (replaced), often a reused one.
          const fd = r() < 0.03 && live.size > 0 ? pick([...live.keys()]) : closed.length > 0 && r() < 0.5 ? closed.pop()! : nextFd++;
          if (!fds.includes(fd)) fds.push(fd);
        }
        mirror.addMany(fds, meta);
        for (const fd of fds) live.set(fd, meta);
      };
      const removeSome = (): void => {
        const fds = [...live.keys()];
        for (let i = Math.floor(r() * 30); i >= 0; i--) {
          const fd = pick(fds);
          if (!live.has(fd)) continue;
          mirror.remove(fd);
          live.delete(fd);
          closed.push(fd);
          removedSinceFlush.add(fd);
        }
      };
      for (let step = 0; step < 1000; step++) {
        const x = r();
        if (x < 0.3) {
          addBatch();
        } else if (x < 0.6 && live.size > 0) {
          removeSome();
        } else if (x < 0.62) {
          // A new keeper: everything again after an R.
          mirror.resync(1 << 20);
          keeper = new ModelKeeper();
          flush();
        } else if (x < 0.7) {
          mirror.setState(JSON.stringify({ step }));
        } else {
          flush();
          expect(mirror.size).toBe(live.size);
        }
      }
      flush();
    }
  });

  it('a full keeper: MirrorFullError, the adds before it kept, a removal makes room again', () => {
    const mirror = new Mirror(10);
    const keeper = new ModelKeeper();
    expect(() => mirror.addMany([101, 102, 103, 104, 105, 106, 107, 108, 109, 110, 111, 112], 'm')).toThrow(MirrorFullError);
    expect(mirror.size).toBe(10);
    for (const m of mirror.flush()) keeper.apply(m);
    expect(keeper.held()).toEqual([101, 102, 103, 104, 105, 106, 107, 108, 109, 110].map((fd) => `${fd} m`).sort());
    mirror.remove(103);
    mirror.add(111, 'n');
    for (const m of mirror.flush()) keeper.apply(m);
    expect(keeper.held()).toEqual([101, 102, 104, 105, 106, 107, 108, 109, 110].map((fd) => `${fd} m`).concat(['111 n']).sort());
    expect(() => mirror.add(112, 'n')).toThrow(MirrorFullError);
  });

  it('a new keeper with less room: the slots are numbered afresh, the first fds fit, the rest are counted as unmirrored', () => {
    const mirror = new Mirror(100);
    mirror.addMany([10, 11, 12, 13, 14, 15], 'a');
    mirror.remove(11);
    mirror.remove(13);
    mirror.flush();
    mirror.resync(3);
    const keeper = new ModelKeeper();
    for (const m of mirror.flush()) keeper.apply(m);
    expect([...keeper.slots.keys()].sort()).toEqual([0, 1, 2]);
    expect(keeper.held()).toEqual(['10 a', '12 a', '14 a']);
    expect([mirror.size, mirror.unmirrored, mirror.has(15)]).toEqual([3, 1, false]);
    // Room again after a removal: a new fd takes the freed slot.
    mirror.remove(12);
    mirror.add(16, 'b');
    for (const m of mirror.flush()) keeper.apply(m);
    expect(keeper.held()).toEqual(['10 a', '14 a', '16 b']);
  });
  it('adoption: slots the keeper holds that nothing adopted are closed there, the gaps are reused, metadata ids kept', () => {
    const keeper = new ModelKeeper();
    // What the keeper held for the earlier agent: slots 0..5, metadata 0 and 3.
    keeper.metas.set(0, 'x').set(3, 'y');
    for (let s = 0; s < 6; s++) keeper.slots.set(s, { fd: 200 + s, meta: s % 2 === 0 ? 0 : 3 });
    const mirror = new Mirror(100);
    // This agent takes over slots 1, 2 and 4 (the others belong to no container it serves).
    mirror.adopt(1, 201, 3, 'y');
    mirror.adopt(2, 202, 0, 'x');
    mirror.adopt(4, 204, 0, 'x');
    mirror.adopted([0, 1, 2, 3, 4, 5], [0, 3]);
    for (const m of mirror.flush()) keeper.apply(m);
    expect(keeper.held()).toEqual(['201 y', '202 x', '204 x']);
    // New fds go into the freed slots first, and a new name gets an id the keeper has not seen in use.
    mirror.addMany([301, 302, 303, 304], 'z');
    for (const m of mirror.flush()) keeper.apply(m);
    expect(keeper.held()).toEqual(['201 y', '202 x', '204 x', '301 z', '302 z', '303 z', '304 z']);
    expect([...keeper.slots.keys()].sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });
});
