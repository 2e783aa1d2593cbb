import { spawn, spawnSync } from 'node:child_process';
import { openSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  close,
  countFds,
  epollAdd,
  epollCreate,
  epollDel,
  EPOLLHUP,
  epollWait,
  notifySocket,
  pidfdOpen,
  POLL_READABLE,
  pollStart,
  pollStop,
  pollUpdate,
  recvNotify,
  SysError,
  type NotifyDatagram,
} from '../../src/native/sys.js';
import { ADDON_RELATIVE_PATH, packageRoot } from '../../src/native/load.js';
import { loopTurns, makeTmp, readable, sendDgram, startPeer } from './peer.js';

let tmp: ReturnType<typeof makeTmp>;
let path: string;
let sock: number;
beforeEach(() => {
  tmp = makeTmp();
  path = join(tmp.dir, 'notify');
  sock = notifySocket(path, 1 << 20);
});
afterEach(() => {
  close(sock);
  tmp.cleanup();
});

describe('epoll hang-up set', () => {
  it('reports EPOLLHUP with its key when the peer of a stored socketpair end closes', async () => {
    const peer = startPeer({ mode: 'dgram', path, data: 'FDSTORE=1', fds: [{ kind: 'socketpair' }], hold: true });
    await peer.result;
    const [fd] = recvNotify(sock)!.fds;
    const ep = epollCreate();
    const key = 2 ** 40 + 5; // above 32 bits: data.u64 carries the whole key
    epollAdd(ep, fd!, key);
    expect(epollWait(ep)).toEqual([]);
    peer.end();
    await peer.exited;
    const events = epollWait(ep);
    expect(events).toHaveLength(1);
    expect(events[0]!.key).toBe(key);
    expect(events[0]!.events & EPOLLHUP).toBe(EPOLLHUP);
    epollDel(ep, fd!);
    expect(epollWait(ep)).toEqual([]);
    expect(() => epollDel(ep, fd!)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    close(fd!);
    close(ep);
  });

  it('does not wake for readable data (events = 0)', async () => {
    const peer = startPeer({ mode: 'dgram', path, data: 'FDSTORE=1', fds: [{ kind: 'pipe' }], hold: false });
    await peer.result;
    await peer.exited;
    const [r, w] = recvNotify(sock)!.fds;
    const ep = epollCreate();
    epollAdd(ep, r!, 1);
    expect(epollWait(ep)).toEqual([]);
    close(w!); // last writer gone: the read end hangs up
    expect(epollWait(ep)).toEqual([{ key: 1, events: EPOLLHUP }]);
    close(r!);
    close(ep);
  });

  it('refuses a regular file with EPERM', () => {
    const ep = epollCreate();
    const f = openSync(join(tmp.dir, 'f'), 'w');
    try {
      epollAdd(ep, f, 7);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SysError);
      expect((err as SysError).code).toBe('EPERM');
    }
    closeSync(f);
    close(ep);
  });
});

describe('pollStart / pollStop', () => {
  it('fires on readable, can stop from inside the callback, and stays stopped', async () => {
    const got: NotifyDatagram[] = [];
    let calls = 0;
    const done = new Promise<void>((resolve) => {
      const h = pollStart(sock, POLL_READABLE, (status, events) => {
        calls++;
        expect(status).toBe(0);
        expect(events & POLL_READABLE).toBe(POLL_READABLE);
        got.push(recvNotify(sock)!);
        pollStop(h);
        pollStop(h); // idempotent, even inside the callback
        resolve();
      });
    });
    sendDgram({ path, data: 'READY=1' });
    await done;
    expect(got[0]!.data.toString()).toBe('READY=1');
    sendDgram({ path, data: 'STATUS=x' });
    await loopTurns(); // a poll phase with the datagram ready: a live handle would fire
    expect(calls).toBe(1);
    expect(recvNotify(sock)!.data.toString()).toBe('STATUS=x');
  });

  it('runs promise continuations from the callback before the next event', async () => {
    const order: string[] = [];
    let handle: ReturnType<typeof pollStart> | undefined;
    const done = new Promise<void>((resolve) => {
      handle = pollStart(sock, POLL_READABLE, () => {
        recvNotify(sock);
        order.push('cb');
        void Promise.resolve().then(() => order.push('microtask'));
        setImmediate(() => {
          order.push('immediate');
          resolve();
        });
      });
    });
    sendDgram({ path, data: 'A=1' });
    await done;
    pollStop(handle!);
    expect(order.slice(0, 3)).toEqual(['cb', 'microtask', 'immediate']);
  });

  it('pollUpdate changes events; pollUpdate after stop throws; pollStop of garbage is a TypeError', () => {
    const h = pollStart(sock, POLL_READABLE, () => {});
    pollUpdate(h, 0);
    pollStop(h);
    expect(() => pollUpdate(h, POLL_READABLE)).toThrow();
    expect(() => pollStop({} as never)).toThrow(TypeError);
  });

  it('reports a throwing callback as uncaughtException, whose handler may stop the handle', () => {
    // In a child process: vitest would count the uncaught exception against itself.
    const script = `
      const b = require(${JSON.stringify(join(packageRoot(), ADDON_RELATIVE_PATH))});
      const path = ${JSON.stringify(join(tmp.dir, 'exc'))};
      const fd = b.notifySocket(path, 65536);
      const h = b.pollStart(fd, 1, () => { b.recvNotify(fd, 4096, 768); throw new Error('boom'); });
      process.on('uncaughtException', (e) => { console.log('caught ' + e.message); b.pollStop(h); b.close(fd); });
      require('child_process').execFileSync('python3', ['-c',
        'import socket,sys; socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b"x", sys.argv[1])', path]);
    `;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 10000 });
    expect(r.stdout).toBe('caught boom\n');
    expect(r.status).toBe(0);
  });

  it('pollStart on a regular file throws a SysError', () => {
    const f = openSync(join(tmp.dir, 'f'), 'w');
    expect(() => pollStart(f, POLL_READABLE, () => {})).toThrow(expect.objectContaining({ code: 'EPERM' }));
    closeSync(f);
  });

  it('leaks no fds over many start/stop cycles', async () => {
    const before = countFds();
    for (let i = 0; i < 200; i++) pollStop(pollStart(sock, POLL_READABLE, () => {}));
    await loopTurns(); // libuv finishes closing handles in the loop
    expect(countFds()).toBe(before);
  });
});

describe('pidfdOpen', () => {
  it('becomes readable when the child exits, not before', async () => {
    const child = spawn('sleep', ['3600'], { stdio: 'ignore' });
    const exited = new Promise((r) => child.on('exit', r));
    const pidfd = pidfdOpen(child.pid!);
    let fired = false;
    const got = readable(pidfd).then((events) => {
      fired = true;
      return events;
    });
    await loopTurns(); // polled while the child lives: not readable
    expect(fired).toBe(false);
    child.kill('SIGKILL');
    expect(await got & POLL_READABLE).toBe(POLL_READABLE);
    await exited;
    close(pidfd);
  });

  it('throws ESRCH for a pid that does not exist', () => {
    expect(() => pidfdOpen(0x3ffffff0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });
});
