/**
 * Issue 7 item 6: a restore reflects every datagram the kernel queued before its
 * launcher connected, even with other restores of the container in flight. The
 * agent drains the notify socket when a transfer starts and takes the snapshot
 * then (a queued restore: when it starts, not when it was queued).
 *
 * peer.py sends each datagram with sendmsg (queued by the kernel when it
 * returns), then connects K restores at once, then reads them all: no round trip
 * and no sleep in between. A background thread of the same peer keeps two more
 * restores in flight the whole time.
 */
import { describe, expect, it } from 'vitest';
import { startAgent } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { restoreFixture, Consumer, waitExited } from './harness.js';
import { RestorePeer, type Send } from './peer.js';

const ITERATIONS = 100;
/** Restores checked per iteration; with 2 in the background, within 1 in flight + QUEUE_MAX waiting. */
const K = 2;

const fixture = restoreFixture();
const { agents } = fixture;

/** Deterministic pseudo-random numbers (a test that fails must fail again). */
function lcg(seed: number): () => number {
  let x = seed;
  return () => (x = (x * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
}

describe('restore snapshots (issue 7 item 6)', () => {
  it(`${ITERATIONS} rounds of FDSTORE=1/FDSTOREREMOVE=1 then ${K} restores, others in flight: each restore equals the model exactly`, async () => {
    const agent = await startAgent({ config: { containers: [{ name: 'app', fileDescriptorStoreMax: 4096 }] } });
    agents.push(agent);
    const baseFds = agent.fdCount();
    const peer = new RestorePeer(agent);
    // A base of 600 fds: each restore is several messages, so restores overlap.
    for (let k = 0; k < 3; k++) await peer.send('FDSTORE=1\nFDNAME=base', 200); // SCM_MAX_FD is 253
    await peer.barrier();
    await peer.background(2);

    const model = new Map<string, number>([['base', 600]]);
    const rand = lcg(7);
    const mismatches: string[] = [];
    for (let i = 0; i < ITERATIONS; i++) {
      const sends: Send[] = [];
      const names = [...model.keys()].filter((n) => n !== 'base');
      // F3.19: FDSTOREREMOVE=1 removes every fd of that name; FDSTORE=1 adds under a fresh one.
      if (names.length > 0 && rand() < 0.5) {
        const victim = names[Math.floor(rand() * names.length)]!;
        sends.push({ data: `FDSTOREREMOVE=1\nFDNAME=${victim}` });
        model.delete(victim);
      }
      const n = 1 + Math.floor(rand() * 3);
      sends.push({ data: `FDSTORE=1\nFDNAME=s${i}`, fds: n });
      model.set(`s${i}`, n);
      const restores = await peer.step(sends, K);
      const want = expected(model);
      restores.forEach((r, j) => {
        const got = [...r.names].sort();
        if (r.end !== 'E' || r.header !== want.length || got.join(',') !== want.join(',')) {
          mismatches.push(`round ${i} restore ${j}: ${r.end}, ${r.header} fds, ${diff(want, got)}`);
        }
      });
    }
    const background = await peer.backgroundStop();
    console.log(`background restores meanwhile: ${JSON.stringify(background)}`);
    expect(mismatches).toEqual([]);
    expect(background.E ?? 0).toBeGreaterThan(0);

    // And the real launcher agrees with the model, once the peer (the current run's
    // main process: it restored last) is gone.
    await peer.exit();
    await waitExited(agent);
    const c = await Consumer.start(agent, fixture.consumer);
    expect(c.report.fds.map((f) => f.name).sort()).toEqual(expected(model));
    await c.exit();
    await waitExited(agent);
    await expectFdCount(agent, baseFds + expected(model).length);
  });
});

function expected(model: Map<string, number>): string[] {
  return [...model].flatMap(([name, n]) => Array<string>(n).fill(name)).sort();
}

function diff(want: string[], got: string[]): string {
  const count = (xs: string[]) => xs.reduce((m, x) => m.set(x, (m.get(x) ?? 0) + 1), new Map<string, number>());
  const w = count(want);
  const g = count(got);
  const missing = [...w].filter(([k, v]) => (g.get(k) ?? 0) < v).map(([k]) => k);
  const extra = [...g].filter(([k, v]) => (w.get(k) ?? 0) < v).map(([k]) => k);
  return `missing [${missing.join(' ')}] extra [${extra.join(' ')}]`;
}
