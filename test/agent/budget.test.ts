/**
 * The fd budget of the real agent under a lowered RLIMIT_NOFILE (issue 7 items 1
 * and 7): whatever a peer on the pod network does with HTTP connections, a store
 * still receives, keeps and restores its fds; the largest store the agent accepts
 * restores under the same limit; a message that only partly fits is stored up to
 * the limit (F3.8) instead of truncated by the kernel and dropped whole (D1.15).
 */
import { connect, type Socket } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startAgent } from '../helpers/agent.js';
import { NotifyClient } from '../helpers/clients/index.js';
import { closed, drops, mark } from '../helpers/observe.js';
import { FDSTORE_BIN, run } from '../helpers/proc.js';
import { Consumer, freePort, launcherOf, restoreFixture } from '../restore/harness.js';
import { HTTP_MAX_CONNECTIONS, largestStoreMax } from '../../src/agent/limits.js';
import { FDS_PER_MSG } from '../../src/native/proto.js';

const f = restoreFixture();

interface Conn {
  sock: Socket;
  closedByServer: Promise<void>;
}

function idle(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const closedByServer = new Promise<void>((r) => sock.once('close', () => r()));
    // Read it: a paused socket never emits 'end' (nor 'close') for the server's FIN.
    sock.resume();
    sock.on('error', () => {}); // ECONNRESET when the agent closes one past its cap
    sock.once('connect', () => resolve({ sock, closedByServer }));
    sock.once('error', reject);
  });
}

/** Stores n fresh fds (socketpair ends, FDPOLL=0: kept when the client exits) 253 per message, then a barrier. */
async function storeFds(client: NotifyClient, n: number, name: string): Promise<void> {
  const ids = await client.socketpairs(n);
  for (let i = 0; i < ids.length; i += FDS_PER_MSG) {
    expect(await client.notify(`FDSTORE=1\nFDPOLL=0\nFDNAME=${name}`, ids.slice(i, i + FDS_PER_MSG))).toBeGreaterThan(0);
  }
  expect(await client.barrier()).toBe(1);
}

async function stored(agent: Awaited<ReturnType<typeof startAgent>>): Promise<number> {
  return (await agent.ls('app')).containers[0]!.count;
}

describe('fd budget: HTTP connections (item 1)', () => {
  it('1,100 idle connections under RLIMIT_NOFILE 1024 cost the cap; a 200-fd FDSTORE=1 is stored in full and restored; no accept spin', async () => {
    const port = await freePort();
    const agent = await startAgent({ nofile: 1024, args: ['--fd-store-max', '200', '--http', `127.0.0.1:${port}`] });
    f.agents.push(agent);
    const base = agent.fdCount();

    const total = 1100;
    const conns: Conn[] = [];
    try {
      for (let i = 0; i < total; i++) conns.push(await idle(port));
      // Real sync point: the agent closes every connection past its cap, in accept order.
      let closedN = 0;
      await new Promise<void>((resolve) => {
        for (const c of conns)
          void c.closedByServer.then(() => {
            if (++closedN === total - HTTP_MAX_CONNECTIONS) resolve();
          });
      });
      expect(agent.fdCount()).toBeLessThanOrEqual(base + HTTP_MAX_CONNECTIONS);

      const client = NotifyClient.start({ socket: agent.notifyPath() });
      try {
        await storeFds(client, 200, 'conn');
      } finally {
        await client.exit();
      }
      expect(await drops(agent)).toEqual([]);
      expect(await stored(agent)).toBe(200);
      expect(agent.fdCount()).toBeLessThanOrEqual(base + HTTP_MAX_CONNECTIONS + 200);

      const app = await Consumer.start(agent, f.consumer);
      expect(app.report.n).toBe(200);
      expect(app.byName('conn')).toHaveLength(200);
      await app.exit();
    } finally {
      for (const c of conns) c.sock.destroy();
    }
    // Nothing spun on accept: no failed accept at all, since every consumer of fds is capped.
    expect(agent.logs.filter((l) => /accept failed/.test(l.msg))).toEqual([]);
  });
});

describe('fd budget: the largest accepted store (item 7)', () => {
  const LIMIT = 2048;
  const MAX = largestStoreMax(LIMIT);

  it('one fd more than the largest store is refused at start, naming the numbers', async () => {
    const r = await run('prlimit', [`--nofile=${LIMIT}:${LIMIT}`, '--', process.execPath, FDSTORE_BIN, 'agent', '--run-dir', '/nonexistent/fdstore-budget',
      '--container', 'app', '--fd-store-max', String(MAX + 1), '--http', 'off']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`need ${LIMIT + 1} fds .*app=${MAX + 1}.*RLIMIT_NOFILE allows ${LIMIT}`));
  });

  it('a message that partly fits is stored up to the limit, the rest counted over_limit; the full store restores under the same limit', async () => {
    const agent = await startAgent({ nofile: LIMIT, args: ['--fd-store-max', String(MAX)] });
    f.agents.push(agent);
    const base = agent.fdCount();
    const client = NotifyClient.start({ socket: agent.notifyPath() });
    try {
      await storeFds(client, MAX - 10, 'bulk');
      expect(await stored(agent)).toBe(MAX - 10);
      const from = await mark(agent);
      await storeFds(client, FDS_PER_MSG, 'last');
      expect(await drops(agent, from)).toEqual([]); // not truncated, not dropped whole
      expect(await closed(agent, 'over_limit', from)).toBe(FDS_PER_MSG - 10);
      expect(await stored(agent)).toBe(MAX);
      expect(agent.fdCount()).toBe(base + MAX);
    } finally {
      await client.exit();
    }

    // The launcher under the agent's own limit, as the app's container usually has it.
    const app = new Consumer('prlimit', f.consumer, { launcherArgs: [`--nofile=${LIMIT}:${LIMIT}`, launcherOf(agent)] });
    await app.ready();
    expect(app.report.n).toBe(MAX);
    expect(app.byName('last')).toHaveLength(10);
    await app.exit();
  });
});
