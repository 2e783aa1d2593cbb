/**
 * Issue 7 item 2: restore peers that connect and never read. One transfer per
 * container at a time, a bounded wait queue, deadlines (src/restore/deadlines.ts),
 * deferred closes counted against the store's max, memory per transfer bounded.
 * A store of 2,000 fds with 255-byte names (F3.13's FDNAME_MAX) is ~512 KB of
 * restore messages: more than a socket buffer, so a peer that does not read keeps
 * its transfer in flight (the agent waits for writability).
 */
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Agent } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { restoreFixture, Consumer, containerState, launcherOf, until, waitExited, agentWithMax } from './harness.js';
import { QUEUE_MAX, TRANSFER_DEADLINE_MS } from '../../src/restore/deadlines.js';
import { CONTAINER_SOCKET_FDS, PER_CONTAINER_RESERVED_FDS } from '../../src/agent/limits.js';
import { longName as longNameOf, RestorePeer, rssBytes, storeLong } from './peer.js';

const LONG = 2000;
const MB = 1024 * 1024;

const fixture = restoreFixture();
const { agents } = fixture;

const agentWith = (max: number): Promise<Agent> => agentWithMax(agents, max);

interface RestoreCounters {
  restoreFailures: number;
  restoresInFlight: number;
  restoresWaiting: number;
  deferredCloses: number;
  count: number;
}

async function counters(agent: Agent): Promise<RestoreCounters> {
  return (await containerState(agent)) as unknown as RestoreCounters;
}

describe('stalled restore peers (issue 7 item 2)', () => {
  it('peers that connect and never read: one transfer in flight, the rest wait (bounded) or are refused; RSS and fds bounded', { timeout: 120_000 }, async () => {
    const agent = await agentWith(LONG + 100);
    const sender = new RestorePeer(agent);
    await storeLong(sender, LONG);
    await sender.exit();
    const baseFds = agent.fdCount();
    const baseRss = rssBytes(agent.pid);

    // Three processes connect 300 times each, as fast as they can, and never read.
    const peers = [new RestorePeer(agent), new RestorePeer(agent), new RestorePeer(agent)];
    const opened = await Promise.all(peers.map((p) => p.connect(300)));
    expect(opened).toEqual([300, 300, 300]);
    // Every connection is in (connect() returned) and, once the backlog is empty,
    // accepted: the agent then holds at most the one in flight and QUEUE_MAX waiting
    // (a connection and a pidfd each), plus the pidfd watching the run's main process.
    // Read from outside while it runs, the count may include a connection it has just
    // accepted and is refusing (and its pidfd): wait for that to settle, no longer.
    await until(() => backlog(agent.pid) === 0, 30_000, 'every connection to be accepted');
    const bound = baseFds + 2 + 2 * QUEUE_MAX + 2;
    // That peak is what the fd budget reserves for it (the container's sockets were in baseFds).
    expect(bound - baseFds).toBeLessThanOrEqual(PER_CONTAINER_RESERVED_FDS - CONTAINER_SOCKET_FDS);
    await until(() => agent.fdCount() <= bound, 5_000, `the agent's fds to be at most ${bound}`);
    const during = await counters(agent);
    expect(during.restoresInFlight).toBeLessThanOrEqual(1);
    expect(during.restoresWaiting).toBeLessThanOrEqual(QUEUE_MAX);

    // Each one ends without fds: refused at once, refused after waiting, or abandoned once stalled.
    await until(async () => {
      const c = await counters(agent);
      return c.restoreFailures === 900 && c.restoresInFlight === 0 && c.restoresWaiting === 0;
      // The last one to start may find nobody waiting: then nothing hurries it, and it
      // ends at its deadline (TRANSFER_DEADLINE_MS, 30 s) rather than STALL_MS after a waiter came.
    }, TRANSFER_DEADLINE_MS + 15_000, 'every stalled restore to end');
    const rss = rssBytes(agent.pid);
    console.log(`RSS ${Math.round(baseRss / MB)} MB before 900 stalled restores of ${LONG} long-named fds, ${Math.round(rss / MB)} MB after`);
    expect(rss).toBeLessThan(baseRss + 64 * MB);
    const reasons = new Set(agent.logs.filter((l) => l.msg === 'restore refused' || l.msg === 'restore failed').map((l) => l.reason));
    expect(reasons).toContain('busy');
    expect(reasons).toContain('stalled');

    for (const p of peers) await p.exit();
    await waitExited(agent);
    expect(await counters(agent)).toMatchObject({ count: LONG, deferredCloses: 0 });
    await expectFdCount(agent, baseFds);
  });

  /**
   * While a stalled peer pins the store, the app replaces its long-named fds by
   * three short-named ones; the real launcher's restore, queued or not, takes its
   * snapshot when it starts, so it gets exactly those three.
   */
  async function replaceWhilePinned(agent: Agent, sender: RestorePeer): Promise<void> {
    for (let k = 0; k < LONG / 250; k++) await sender.send(`FDSTOREREMOVE=1\nFDNAME=${longNameOf(k)}`);
    await sender.send('FDSTORE=1\nFDNAME=a', 2);
    await sender.send('FDSTORE=1\nFDNAME=b', 1);
    await sender.barrier();
    expect(await counters(agent)).toMatchObject({ count: 3, deferredCloses: LONG, restoresInFlight: 1 });
  }

  it('a stalled peer that goes away: its transfer fails, the deferred closes run, the real launcher restores exactly', async () => {
    const agent = await agentWith(LONG + 100);
    const sender = new RestorePeer(agent);
    await storeLong(sender, LONG);
    const stalled = new RestorePeer(agent);
    await stalled.connect(1);
    expect((await stalled.read(0, 1)).kinds).toEqual(['H']); // in flight, then it stops reading
    await replaceWhilePinned(agent, sender);
    const failuresBefore = (await counters(agent)).restoreFailures;
    await stalled.kill();
    // The agent's own count of failed restores is the sync point (the log line comes on
    // its stderr, in no order with the admin socket's answers).
    await until(async () => (await counters(agent)).restoreFailures === failuresBefore + 1, 10_000, 'the stalled transfer to fail');
    expect(await counters(agent)).toMatchObject({ count: 3, deferredCloses: 0, restoresInFlight: 0 });
    expect((await agent.metrics()).get('fdstore_restore_failures_total{app_container="app",reason="disconnected"}')).toBe(1);

    const c = await Consumer.start(agent, fixture.consumer);
    expect(c.report.fds.map((f) => f.name)).toEqual(['a', 'a', 'b']);
    await c.exit();
    await sender.exit();
    await waitExited(agent);
  });

  it('a real launcher while a stalled peer (the current main process) holds the restore: refused and told why; after the peer goes, it restores exactly', async () => {
    const agent = await agentWith(LONG + 100);
    const sender = new RestorePeer(agent);
    await storeLong(sender, LONG);
    const baseFds = agent.fdCount();
    const stalled = new RestorePeer(agent);
    await stalled.connect(1);
    expect((await stalled.read(0, 1)).kinds).toEqual(['H']); // in flight, then it stops reading
    await replaceWhilePinned(agent, sender);

    // The stalled peer started the current run and lives (item 5): the launcher
    // cannot take it over, however long the transfer stalls.
    const refused = new Consumer(launcherOf(agent), fixture.consumer);
    expect(await refused.proc.exited).toBe(111);
    expect(refused.proc.stderrText).toMatch(new RegExp(`aborted the restore: the main process ${stalled.pid} of the current run is alive`));
    expect(await counters(agent)).toMatchObject({ count: 3, deferredCloses: LONG, restoresInFlight: 1, restoreFailures: 1 });

    // It goes away: its transfer fails, the deferred closes run, the next launcher gets exactly the snapshot of now.
    await stalled.kill();
    await until(async () => (await counters(agent)).restoresInFlight === 0, 10_000, 'the stalled transfer to end');
    await waitExited(agent);
    const c = await Consumer.start(agent, fixture.consumer);
    expect(c.report.fds.map((f) => f.name)).toEqual(['a', 'a', 'b']);
    expect(await counters(agent)).toMatchObject({ count: 3, deferredCloses: 0, restoresInFlight: 0, restoresWaiting: 0, restoreFailures: 2 });
    await c.exit();
    await sender.exit();
    await waitExited(agent);
    await expectFdCount(agent, baseFds - LONG + 3);
  });

  it('with one restore in flight and the queue full, one more connection is refused busy; a real launcher meanwhile is refused and says why (exit 111)', async () => {
    const agent = await agentWith(LONG + 100);
    const sender = new RestorePeer(agent);
    await storeLong(sender, LONG);
    await sender.exit();
    const restore = join(agent.runDir, 'app', 'restore');
    // Stopped, the agent accepts nothing: every connection below waits in the
    // listen backlog, in order, and is accepted in one go after SIGCONT.
    process.kill(agent.pid, 'SIGSTOP');
    let c: Consumer;
    const peer = new RestorePeer(agent);
    try {
      expect(await peer.connect(2 + QUEUE_MAX)).toBe(2 + QUEUE_MAX);
      c = new Consumer(launcherOf(agent), fixture.consumer);
      await until(() => backlog(agent.pid) === 3 + QUEUE_MAX, 10_000, 'the launcher in the backlog');
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    // The first connection started the run: the peer is its main process, so the
    // launcher (another process) is refused while it lives (item 5)...
    expect(await c.proc.exited).toBe(111);
    expect(c.proc.stderrText).toMatch(
      new RegExp(`^fdstore-exec: agent at ${restore} aborted the restore: the main process ${peer.pid} of the current run is alive: a new run starts only after it exited$`, 'm'),
    );
    // ... while the peer's own connections queue behind the one in flight (QUEUE_MAX) and the next is refused busy.
    const restores = await peer.readAll();
    expect(restores.map((r) => r.end)).toEqual([
      ...Array<string>(1 + QUEUE_MAX).fill('E'),
      `X restore of container app busy: one in flight (pid ${peer.pid}) and ${QUEUE_MAX} waiting; try again`,
    ]);
    expect(restores.slice(0, 1 + QUEUE_MAX).every((r) => r.fds === LONG)).toBe(true);
    expect(await counters(agent)).toMatchObject({ restoreFailures: 2, restoresInFlight: 0, restoresWaiting: 0 });
    await peer.exit();
    await waitExited(agent);
  });
});

/**
 * Pending connections in the listen backlog of the agent's restore socket (ss:
 * Recv-Q of a listener). Found by owner: the agent binds through its directory's
 * fd, so the name ss shows is /proc/self/fd/N/restore, not the path.
 */
function backlog(agentPid: number): number {
  for (const line of execFileSync('ss', ['-xlHp'], { encoding: 'utf8' }).split('\n')) {
    const col = line.trim().split(/\s+/);
    if (col[4]?.endsWith('/restore') && line.includes(`pid=${agentPid},`)) return Number(col[2]);
  }
  return -1;
}
