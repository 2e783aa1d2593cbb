import { closeSync, constants, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  accept,
  close,
  countFds,
  fdInfo,
  getNofile,
  notifySocket,
  recv,
  recvNotify,
  sendFds,
  seqpacketListen,
  setNofile,
  streamListen,
} from '../../src/native/sys.js';
import { isCloexec, makeTmp, readable, sendDgram, startPeer } from './peer.js';

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

let tmp: ReturnType<typeof makeTmp>;
beforeEach(() => {
  tmp = makeTmp();
});
afterEach(() => tmp.cleanup());

describe('accept', () => {
  it('returns null with nothing pending, then the peer credentials and a pidfd', async () => {
    const path = join(tmp.dir, 'admin');
    const lfd = streamListen(path, 4);
    expect(accept(lfd)).toBeNull();
    const peer = startPeer({ mode: 'connect', path, type: 'stream', hold: true });
    const { pid } = await peer.result;
    await readable(lfd);
    const a = accept(lfd)!;
    expect(a.pid).toBe(pid);
    expect(a.uid).toBe(process.getuid!());
    expect(a.gid).toBe(process.getgid!());
    expect(isCloexec(a.fd)).toBe(true);
    // SO_PEERPIDFD exists since Linux 6.5; older kernels give -1.
    if (a.pidfd >= 0) {
      expect(fdInfo(a.pidfd).path).toBe('anon_inode:[pidfd]');
      expect(isCloexec(a.pidfd)).toBe(true);
      close(a.pidfd);
    }
    expect(recv(a.fd, 16)).toBeNull();
    peer.end();
    await peer.exited;
    expect(recv(a.fd, 16)!.length).toBe(0); // EOF
    close(a.fd);
    close(lfd);
  });
});

describe('sendFds', () => {
  it('sends 253 fds in one seqpacket message', async () => {
    const path = join(tmp.dir, 'restore');
    const lfd = seqpacketListen(path, 4);
    const peer = startPeer({ mode: 'connect', path, type: 'seqpacket', recv: true });
    await readable(lfd);
    const a = accept(lfd)!;
    if (a.pidfd >= 0) close(a.pidfd);
    const before = countFds();
    const fds = Array.from({ length: 253 }, () => openSync('/dev/null', 'r'));
    expect(sendFds(a.fd, Buffer.from('F\n'), fds)).toBe(2);
    for (const f of fds) closeSync(f);
    expect(countFds()).toBe(before);
    const res = await peer.result;
    expect(res.received).toEqual({ data: 'F\n', fds: 253, flags: 0 });
    expect(() => sendFds(a.fd, Buffer.alloc(1), new Array<number>(254).fill(0))).toThrow(RangeError);
    await peer.exited; // it reads one message and leaves
    expect(() => sendFds(a.fd, Buffer.from('E\n'))).toThrow(expect.objectContaining({ code: 'EPIPE' }));
    close(a.fd);
    close(lfd);
  });
});

describe('fdInfo', () => {
  it('describes sockets, memfds, pipes and files', () => {
    const nsock = notifySocket(join(tmp.dir, 'notify'), 1 << 20);
    const file = join(tmp.dir, 'file');
    writeFileSync(file, '');
    const ulisten = join(tmp.dir, 'listen');
    const kinds = [
      { kind: 'tcp-listen' },
      { kind: 'udp' },
      { kind: 'unix-listen', path: ulisten },
      { kind: 'unix-abstract' },
      { kind: 'socketpair' },
      { kind: 'memfd' },
      { kind: 'pipe' },
      { kind: 'file', path: file },
    ];
    const peer = sendDgram({ path: join(tmp.dir, 'notify'), data: 'FDSTORE=1', fds: kinds });
    const d = recvNotify(nsock)!;
    const infos = d.fds.map((f) => fdInfo(f));
    const tcpPort = peer.info.find((i) => i.kind === 'tcp-listen')!.port;
    const udpPort = peer.info.find((i) => i.kind === 'udp')!.port;
    const abstract = peer.info.find((i) => i.kind === 'unix-abstract')!.name;
    const [tcp, udp, unix, abs, pair, memfd, pr, pw, reg] = infos;

    expect(tcp).toMatchObject({ family: AF_INET, sockType: SOCK_STREAM, listening: true });
    expect(tcp!.localAddress).toBe(`127.0.0.1:${tcpPort}`);
    expect(tcp!.peerAddress).toBe('');
    expect(tcp!.path).toMatch(/^socket:\[\d+\]$/);
    expect(tcp!.mode & constants.S_IFMT).toBe(constants.S_IFSOCK);

    expect(udp).toMatchObject({ family: AF_INET, sockType: SOCK_DGRAM, listening: false });
    expect(udp!.localAddress).toBe(`127.0.0.1:${udpPort}`);
    expect(udp!.peerAddress).toBe('127.0.0.1:9');

    expect(unix).toMatchObject({ family: AF_UNIX, sockType: SOCK_STREAM, listening: true, localAddress: ulisten });
    expect(abs).toMatchObject({ family: AF_UNIX, sockType: SOCK_DGRAM, localAddress: `@${abstract}` });
    expect(pair).toMatchObject({ family: AF_UNIX, localAddress: '', peerAddress: '' });

    expect(memfd).toMatchObject({ family: -1, sockType: -1, listening: false, localAddress: '' });
    expect(memfd!.path).toMatch(/^\/memfd:fdstore-test/);
    expect(memfd!.mode & constants.S_IFMT).toBe(constants.S_IFREG);

    expect(pr!.path).toMatch(/^pipe:\[\d+\]$/);
    expect(pr!.mode & constants.S_IFMT).toBe(constants.S_IFIFO);
    expect(pw!.flags & 3 /* O_ACCMODE */).toBe(constants.O_WRONLY);

    expect(reg!.path).toBe(file);
    expect(reg!.flags).toBe(constants.O_RDWR | constants.O_APPEND);
    expect(reg!.ino).toBeGreaterThan(0);

    for (const f of d.fds) close(f);
    close(nsock);
  });

  it('renders IPv6 addresses in brackets', () => {
    const nsock = notifySocket(join(tmp.dir, 'notify'), 1 << 20);
    let peer;
    try {
      peer = sendDgram({ path: join(tmp.dir, 'notify'), data: 'x', fds: [{ kind: 'tcp6-listen' }] });
    } catch {
      close(nsock);
      return; // no ::1 in this network namespace
    }
    const d = recvNotify(nsock)!;
    const info = fdInfo(d.fds[0]!);
    expect(info.family).toBe(AF_INET6);
    expect(info.localAddress).toBe(`[::1]:${peer.info[0]!.port}`);
    close(d.fds[0]!);
    close(nsock);
  });

  it('throws EBADF for a closed fd', () => {
    const f = openSync('/dev/null', 'r');
    closeSync(f);
    expect(() => fdInfo(f)).toThrow(expect.objectContaining({ code: 'EBADF', syscall: 'fstat' }));
  });
});

describe('RLIMIT_NOFILE', () => {
  it('reads and sets the soft limit', () => {
    const { soft, hard } = getNofile();
    expect(soft).toBeLessThanOrEqual(hard);
    setNofile(soft - 1);
    expect(getNofile().soft).toBe(soft - 1);
    setNofile(soft);
    expect(getNofile()).toEqual({ soft, hard });
    if (hard !== Infinity) expect(() => setNofile(hard + 1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });
});
