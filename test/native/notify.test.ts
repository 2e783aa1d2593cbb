import { closeSync, constants, fstatSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  close,
  countFds,
  NOTIFY_BYTES_MAX,
  notifySocket,
  recvNotify,
  SysError,
} from '../../src/native/sys.js';
import { isCloexec, makeTmp, sendDgram } from './peer.js';

describe('notify socket + recvNotify', () => {
  let tmp: ReturnType<typeof makeTmp>;
  let path: string;
  let fd: number;

  beforeEach(() => {
    tmp = makeTmp();
    path = join(tmp.dir, 'notify');
    fd = notifySocket(path, 1 << 20);
  });
  afterEach(() => {
    close(fd);
    tmp.cleanup();
  });

  it('returns null when nothing is queued', () => {
    expect(recvNotify(fd)).toBeNull();
  });

  it('reports the sender pid, uid and gid from SCM_CREDENTIALS', () => {
    const peer = sendDgram({ path, data: 'READY=1' });
    const d = recvNotify(fd)!;
    expect(d.data.toString()).toBe('READY=1');
    expect(d.hasCreds).toBe(true);
    expect(d.pid).toBe(peer.pid);
    expect(d.uid).toBe(process.getuid!());
    expect(d.gid).toBe(process.getgid!());
    expect(d.fds).toEqual([]);
    expect(d.truncated || d.ctruncated).toBe(false);
  });

  it('receives fds close-on-exec with their stats', () => {
    const before = countFds();
    sendDgram({ path, data: 'FDSTORE=1', fds: [{ kind: 'devnull' }, { kind: 'pipe' }] });
    const d = recvNotify(fd)!;
    expect(d.fds).toHaveLength(3);
    expect(countFds()).toBe(before + 3);
    for (const f of d.fds) expect(isCloexec(f)).toBe(true);
    expect(d.stats).toBeInstanceOf(Float64Array);
    expect(d.stats).toHaveLength(12);
    expect(d.stats[2]! & constants.S_IFMT).toBe(constants.S_IFCHR);
    expect(d.stats[3]).toBe(constants.O_RDONLY);
    expect(d.stats[6]! & constants.S_IFMT).toBe(constants.S_IFIFO);
    expect(d.stats[11]).toBe(constants.O_WRONLY);
    for (const f of d.fds) close(f);
    expect(countFds()).toBe(before);
  });

  it('hands back an fd we passed to the peer with matching stats', () => {
    const file = join(tmp.dir, 'f');
    const mine = openSync(file, 'w');
    sendDgram({ path, data: 'FDSTORE=1', fds: [{ kind: 'inherit', fd: 3 }] }, [mine]);
    const d = recvNotify(fd)!;
    expect(d.fds).toHaveLength(1);
    expect(d.fds[0]).not.toBe(mine);
    const st = fstatSync(mine);
    expect([d.stats[0], d.stats[1], d.stats[2]]).toEqual([st.dev, st.ino, st.mode]);
    expect(d.stats[3]).toBe(constants.O_WRONLY);
    close(d.fds[0]!);
    closeSync(mine);
  });

  it(`accepts ${NOTIFY_BYTES_MAX} bytes`, () => {
    sendDgram({ path, size: 4096, fds: [{ kind: 'devnull' }, { kind: 'devnull' }] });
    const d = recvNotify(fd, 4096, 768)!;
    expect(d.truncated).toBe(false);
    expect(d.data.length).toBe(4096);
    expect(d.fds).toHaveLength(2);
    for (const f of d.fds) close(f);
  });

  it('drops 4097 bytes as truncated and closes its fds', () => {
    const before = countFds();
    sendDgram({ path, size: 4097, fds: [{ kind: 'devnull' }, { kind: 'pipe' }] });
    const d = recvNotify(fd, 4096, 768)!;
    expect(d.truncated).toBe(true);
    expect(d.data.length).toBe(0);
    expect(d.fds).toEqual([]);
    expect(d.stats).toHaveLength(0);
    expect(d.closedFds).toBe(3);
    expect(countFds()).toBe(before);
  });

  it('MSG_CTRUNC with a small maxFds closes every fd that arrived', () => {
    const before = countFds();
    const fds = Array.from({ length: 20 }, () => ({ kind: 'devnull' }));
    sendDgram({ path, data: 'FDSTORE=1', fds });
    const d = recvNotify(fd, 4096, 1)!;
    expect(d.ctruncated).toBe(true);
    expect(d.truncated).toBe(false);
    expect(d.fds).toEqual([]);
    // Unused room for the pidfd lets a few more than maxFds arrive; all are closed.
    expect(d.closedFds).toBeGreaterThanOrEqual(1);
    expect(d.closedFds).toBeLessThan(20);
    expect(d.hasCreds).toBe(true);
    expect(countFds()).toBe(before);
  });

  it('keeps the full-size control buffer: 253 fds in one datagram', () => {
    const before = countFds();
    const fds = Array.from({ length: 253 }, () => ({ kind: 'devnull' }));
    sendDgram({ path, data: 'FDSTORE=1', fds });
    const d = recvNotify(fd)!;
    expect(d.ctruncated).toBe(false);
    expect(d.fds).toHaveLength(253);
    for (const f of d.fds) close(f);
    expect(countFds()).toBe(before);
  });

  it('accepts an empty datagram', () => {
    sendDgram({ path, data: '' });
    const d = recvNotify(fd)!;
    expect(d.data.length).toBe(0);
    expect(d.truncated).toBe(false);
  });

  it('throws SysError with a code on other errors', () => {
    const dead = notifySocket(join(tmp.dir, 'dead'), 65536);
    close(dead);
    try {
      recvNotify(dead);
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(SysError);
      expect((err as SysError).code).toBe('EBADF');
      expect((err as SysError).errno).toBe(9);
      expect((err as SysError).syscall).toBe('recvmsg');
    }
  });

  it('replaces a stale socket file and rejects a path too long for sun_path', () => {
    const again = notifySocket(path, 65536);
    close(again);
    expect(() => notifySocket(join(tmp.dir, 'x'.repeat(120)), 65536)).toThrow(
      expect.objectContaining({ code: 'ENAMETOOLONG' }),
    );
    expect(() => notifySocket(join(tmp.dir, 'no', 'such', 'dir'), 65536)).toThrow(
      expect.objectContaining({ code: 'ENOENT' }),
    );
  });
});
