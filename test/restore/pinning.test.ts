/**
 * Store pinning with a real agent and real sockets (issue 7 items 2 and 17): a
 * restore sends its snapshot by fd number, so fds removed while it is in flight
 * stay open (deferred closes) until it ends, and count against the store's max.
 * The in-flight restore is a peer that connected and does not read: 2,000 fds
 * with 255-byte names do not fit a socket buffer, so the agent waits for it.
 * Nobody else waits for the container, so the transfer is not abandoned early
 * (src/restore/deadlines.ts STALL_MS applies only while another restore waits).
 */
import { describe, expect, it } from 'vitest';
import type { Agent } from '../helpers/agent.js';
import { closed, expectFdCount, mark, waitClosed } from '../helpers/observe.js';
import { restoreFixture, containerState, until, waitExited, agentWithMax } from './harness.js';
import { RestorePeer, storeLong } from './peer.js';

const LONG = 2000;
const fixture = restoreFixture();
const { agents } = fixture;

const agentWith = (max: number): Promise<Agent> => agentWithMax(agents, max);

async function state(agent: Agent): Promise<{ count: number; deferredCloses: number; restoresInFlight: number; restoreFailures: number }> {
  return (await containerState(agent)) as unknown as { count: number; deferredCloses: number; restoresInFlight: number; restoreFailures: number };
}

/**
 * A peer whose restore is in flight: it read the header (the transfer started,
 * the store is pinned) and nothing more. The agent holds its connection and the
 * run's pidfd.
 */
async function pinBy(agent: Agent, fds: number): Promise<RestorePeer> {
  const peer = new RestorePeer(agent);
  await peer.connect(1);
  expect(await peer.read(0, 1)).toMatchObject({ kinds: ['H'], header: fds });
  return peer;
}

describe('store pinning during a restore', () => {
  it('FDSTOREREMOVE=1 and fdstore clean during a restore: entries leave at once, fds stay open until it ends, the snapshot arrives whole', async () => {
    const agent = await agentWith(LONG + 100);
    const sender = new RestorePeer(agent);
    const names = await storeLong(sender, LONG);
    await sender.send('FDSTORE=1\nFDNAME=victim', 5);
    await sender.barrier();
    const base = agent.fdCount();

    const peer = await pinBy(agent, LONG + 5);
    await expectFdCount(agent, base + 2);
    await sender.send('FDSTOREREMOVE=1\nFDNAME=victim');
    await sender.barrier();
    expect(await state(agent)).toMatchObject({ count: LONG, deferredCloses: 5 });
    await expectFdCount(agent, base + 2); // removed, still open
    expect((await agent.cli(['clean', '--run-dir', agent.runDir, '--container', 'app'])).code).toBe(0);
    expect(await state(agent)).toMatchObject({ count: 0, deferredCloses: LONG + 5 });
    await expectFdCount(agent, base + 2);

    // The transfer ends: it sent the snapshot taken at its start, then the closes run.
    const [r] = await peer.readAll();
    expect(r).toMatchObject({ fds: LONG + 5, end: 'E' });
    expect(r!.names).toEqual([...names, ...Array(5).fill('victim')]);
    expect(await state(agent)).toMatchObject({ count: 0, deferredCloses: 0 });
    await peer.exit();
    await sender.exit();
    await waitExited(agent);
    await expectFdCount(agent, base - LONG - 5);
  });

  it('a FDSTORE=1/FDSTOREREMOVE=1 loop during a restore keeps store + deferred closes within max; the rest is refused as over_limit', async () => {
    const slack = 20;
    const agent = await agentWith(LONG + slack);
    const sender = new RestorePeer(agent);
    await storeLong(sender, LONG);
    const base = agent.fdCount();
    const peer = await pinBy(agent, LONG);
    const from = agent.mark();
    const counted = await mark(agent);
    const loops = 60;
    for (let i = 0; i < loops; i++) {
      await sender.send('FDSTORE=1\nFDNAME=churn', 1);
      await sender.send('FDSTOREREMOVE=1\nFDNAME=churn');
    }
    await sender.barrier();
    // The connection, the run's pidfd, and the removed fds still open: no more than max allows.
    await expectFdCount(agent, base + 2 + slack);
    expect(await state(agent)).toMatchObject({ count: LONG, deferredCloses: slack, restoresInFlight: 1 });
    // Counted and logged: the refusals name the deferred closes that filled the store.
    await waitClosed(agent, 'over_limit', loops - slack, counted);
    expect(await closed(agent, 'over_limit', counted)).toBe(loops - slack);
    const line = agent.since(from).find((l) => l.reason === 'over_limit');
    expect(line).toMatchObject({ max: LONG + slack, deferredCloses: slack });

    // The peer goes away mid-transfer: the restore fails, the deferred fds close, the store is intact.
    await peer.close();
    await until(async () => (await state(agent)).restoreFailures === 1, 10_000, 'the restore to fail');
    expect(await state(agent)).toMatchObject({ count: LONG, deferredCloses: 0, restoresInFlight: 0 });
    await peer.exit();
    await sender.exit();
    await waitExited(agent);
    await expectFdCount(agent, base);
  });
});
