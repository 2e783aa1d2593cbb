/**
 * Exit drain and fairness (issue 7 item 4), on the real agent with real senders:
 * processes that never stop sending to one container's notify socket cannot hold
 * the event loop, neither through the drain on main-process exit (D1.5) nor
 * through the per-turn reads of the socket. Proven with sync points only: the
 * run is seen ended by `fdstore ls`, a neighbour's BARRIER=1 is acknowledged.
 * Latencies under a flood are compared in bench/, not here.
 *
 * The budgets themselves are counted exactly on one NotifyServer whose socket is
 * never empty (every recvmsg answers a datagram, as with a sender that keeps up).
 */
import { openSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { NotifyClient } from '../helpers/clients/index.js';
import { LineProcess, PYTHON } from '../helpers/proc.js';
import { Consumer, containerState, restoreFixture, until } from '../restore/harness.js';
import { EXIT_DRAIN_MAX, NOTIFY_TURN_DATAGRAMS, NOTIFY_TURN_FDS, NotifyServer, readMaxDgramQlen } from '../../src/notify/server.js';
import * as sys from '../../src/native/sys.js';
import type { NotifyDatagram } from '../../src/native/binding.js';
import { Container } from '../../src/unit/container.js';
import { DEFAULTS } from '../../src/config/types.js';
import { createLogger } from '../../src/log/log.js';
import { logObserver } from '../../src/unit/observer.js';
import type { Kernel } from '../../src/native/kernel.js';
import { realProcs } from '../../src/native/procs.js';

const f = restoreFixture();

/**
 * A sender that never stops: blocking sends as fast as the agent takes them. Each
 * carries 253 copies of one fd (not stored: no FDSTORE=1), so the agent's work per
 * datagram (install and close 253 fds) outweighs the sender's and the queue stays full.
 */
const FLOOD = `
import array, os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.connect(sys.argv[1])
fd = os.open("/dev/null", os.O_RDONLY)
anc = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd] * 253).tobytes())]
print("flooding", flush=True)
while True:
    s.sendmsg([b"STATUS=flood"], anc)
`;

const flooders: LineProcess[] = [];
afterEach(async () => {
  for (const p of flooders.splice(0)) {
    p.child.kill('SIGKILL');
    await p.exited;
  }
});

async function flood(agent: Agent, container: string, n = 2): Promise<void> {
  for (let i = 0; i < n; i++) {
    const p = new LineProcess(PYTHON, ['-c', FLOOD, agent.notifyPath(container)]);
    flooders.push(p);
    expect(await p.nextLine(10_000)).toBe('flooding');
  }
}

describe('a container whose notify socket never empties (real agent)', () => {
  it('the drain on main-process exit returns while senders keep sending: the run ends, ls answers', async () => {
    const agent = await startAgent({ args: ['--fd-store-max', '16'] });
    f.agents.push(agent);
    const app = await Consumer.start(agent, f.consumer);
    // Something stored by the app just before it exits is still kept (D1.5).
    await app.cmd('memfd last kept-at-exit');
    await flood(agent, 'app');
    await app.exit();
    // The run of the app ends: 'exited', or at once a new run (main pid unknown) of
    // a flooder: a live process of the container sending after its main process
    // exited starts one (item 8).
    const pid = app.report.pid;
    await until(async () => {
      const s = await containerState(agent);
      return s.state === 'exited' || s.mainPid !== pid;
    }, 20_000, 'app exited while flooded');
    expect(await agent.names()).toEqual(['last']);
    expect(agent.alive).toBe(true);
  });

  it("a neighbour's BARRIER=1 round trips and FDSTORE=1 complete while another container is flooded", async () => {
    const agent = await startAgent({ containers: ['a', 'b'], args: ['--fd-store-max', '64'] });
    f.agents.push(agent);
    await flood(agent, 'a', 3);
    const b = NotifyClient.start({ socket: agent.notifyPath('b') });
    try {
      for (let i = 0; i < 20; i++) expect(await b.barrier(30_000)).toBe(1);
      const ids = await b.socketpairs(10);
      expect(await b.notify('FDSTORE=1\nFDPOLL=0\nFDNAME=neighbour', ids)).toBeGreaterThan(0);
      expect(await b.barrier(30_000)).toBe(1);
      expect(await agent.names('b')).toEqual(Array(10).fill('neighbour'));
    } finally {
      await b.exit();
    }
  });
});

describe('NotifyServer budgets, counted on a socket that never empties', () => {
  /** The real kernel, except that recvNotify always has another datagram with `fds` fds (/dev/null each). */
  function endless(fds: number): { kernel: Kernel; reads: () => number; wake: () => void } {
    let reads = 0;
    let cb: ((status: number, events: number) => void) | null = null;
    const kernel: Kernel = {
      ...sys,
      pollStart: (_fd, _ev, fn) => {
        cb = fn;
        return {} as ReturnType<Kernel['pollStart']>;
      },
      pollStop: () => {},
      recvNotify: (): NotifyDatagram => {
        reads++;
        const got = Array.from({ length: fds }, () => openSync('/dev/null', 'r'));
        return {
          data: Buffer.from(fds > 0 ? 'FDSTORE=1' : 'STATUS=x'),
          fds: got,
          stats: new Array<number>(4 * fds).fill(0),
          pid: process.pid,
          uid: 0,
          gid: 0,
          hasCreds: true,
          truncated: false,
          ctruncated: false,
          closedFds: 0,
        } as unknown as NotifyDatagram;
      },
    };
    return { kernel, reads: () => reads, wake: () => cb!(0, 1) };
  }

  function server(kernel: Kernel, qlen?: number): NotifyServer {
    let id = 0;
    const ops = { sameFile: () => false, pollAdd: () => 0, pollDel: () => {}, close: (fd: number) => void sys.tryClose(fd), nextId: () => ++id };
    const c = new Container({ ...DEFAULTS, name: 'app', fileDescriptorStoreMax: 0, listen: [] }, ops, 0);
    const log = createLogger({ write: () => true }, 'error');
    return new NotifyServer({ kernel, obs: logObserver(log), log, procs: realProcs, nowMs: () => 0, maxDgramQlen: qlen }, c, '/unused', -1);
  }

  it(`one wakeup reads ${NOTIFY_TURN_DATAGRAMS} datagrams, then yields`, () => {
    const e = endless(0);
    const s = server(e.kernel);
    s.start();
    e.wake();
    expect(e.reads()).toBe(NOTIFY_TURN_DATAGRAMS);
  });

  it(`one wakeup reads at most ${NOTIFY_TURN_FDS} fds: ${NOTIFY_TURN_FDS / 253} messages of 253 fds (closed, nothing leaks)`, () => {
    const e = endless(253);
    const s = server(e.kernel);
    const before = sys.countFds();
    s.start();
    e.wake();
    expect(e.reads()).toBe(NOTIFY_TURN_FDS / 253);
    expect(sys.countFds()).toBe(before);
  });

  it('the exit drain reads max_dgram_qlen + 1 datagrams (what the kernel can have queued), capped', () => {
    const e = endless(0);
    expect(server(e.kernel, 10).drain()).toBe(11);
    expect(e.reads()).toBe(11);
    expect(server(endless(0).kernel, 1_000_000).drain()).toBe(EXIT_DRAIN_MAX);
    expect(server(endless(0).kernel).exitDrainMax).toBe(Math.min(readMaxDgramQlen() + 1, EXIT_DRAIN_MAX));
  });
});
