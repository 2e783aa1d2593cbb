/**
 * The socket-activation verb on real sockets (sys.listenSocket / setNonblock) and
 * the pure address check the agent runs before binding anything.
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listenAddressProblem } from '../../src/agent/listen.js';
import * as sys from '../../src/native/sys.js';
import { tempRoot } from '../helpers/agent.js';
import { freePort } from './harness.js';

/** Linux's O_NONBLOCK (asm-generic/fcntl.h). */
const O_NONBLOCK = 0o4000;

describe('listenAddressProblem', () => {
  it.each([
    ['tcp', '127.0.0.1:80'],
    ['tcp', '0.0.0.0:0'],
    ['udp', '[::]:53'],
    ['tcp', '[::ffff:127.0.0.1]:8080'],
    ['unix-stream', '/run/x.sock'],
    ['unix-dgram', '@name'],
  ] as const)('accepts %s %s', (kind, address) => {
    expect(listenAddressProblem(kind, address)).toBeNull();
  });

  it.each([
    ['tcp', 'localhost:80'],
    ['tcp', '80'],
    ['tcp', ':80'],
    ['tcp', '::1:80'],
    ['tcp', '[127.0.0.1]:80'],
    ['tcp', '1.2.3.4:65536'],
    ['udp', '[::1]:'],
    ['unix-stream', 'rel/x.sock'],
    ['unix-stream', '/' + 'a'.repeat(107)],
    ['unix-dgram', '@'],
  ] as const)('rejects %s %s', (kind, address) => {
    expect(listenAddressProblem(kind, address)).toEqual(expect.any(String));
  });
});

describe('sys.listenSocket', () => {
  it('binds each kind blocking, listening only for streams', async () => {
    const port = await freePort();
    const root = tempRoot();
    const cases = [
      ['tcp', `127.0.0.1:${port}`, { family: 2, sockType: 1, listening: true, localAddress: `127.0.0.1:${port}` }],
      ['udp', `[::1]:${port}`, { family: 10, sockType: 2, listening: false, localAddress: `[::1]:${port}` }],
      ['unix-stream', join(root, 's.sock'), { family: 1, sockType: 1, listening: true, localAddress: join(root, 's.sock') }],
      ['unix-dgram', `@fdstore-listen-test-${process.pid}`, { family: 1, sockType: 2, listening: false }],
    ] as const;
    for (const [kind, address, want] of cases) {
      const fd = sys.listenSocket(kind, address, 16, false);
      try {
        const info = sys.fdInfo(fd);
        expect(info).toMatchObject(want);
        expect(info.flags & O_NONBLOCK).toBe(0);
        sys.setNonblock(fd, true);
        expect(sys.fdInfo(fd).flags & O_NONBLOCK).toBe(O_NONBLOCK);
        sys.setNonblock(fd, false);
        expect(sys.fdInfo(fd).flags & O_NONBLOCK).toBe(0);
      } finally {
        sys.close(fd);
      }
    }
    expect(lstatSync(join(root, 's.sock')).mode & 0o777).toBe(0o666);
  });

  it('reports errno codes: EADDRINUSE, EINVAL for a malformed address', async () => {
    const port = await freePort();
    const fd = sys.listenSocket('tcp', `127.0.0.1:${port}`, 16, false);
    try {
      expect(() => sys.listenSocket('tcp', `127.0.0.1:${port}`, 16, false)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
      // SO_REUSEPORT on both sides is required to share; ours was bound without it.
      expect(() => sys.listenSocket('tcp', `127.0.0.1:${port}`, 16, true)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    } finally {
      sys.close(fd);
    }
    const a = sys.listenSocket('udp', `127.0.0.1:${port}`, 0, true);
    const b = sys.listenSocket('udp', `127.0.0.1:${port}`, 0, true);
    sys.close(a);
    sys.close(b);
    for (const [kind, address] of [['tcp', 'localhost:1'], ['udp', '[zz]:1'], ['unix-stream', 'relative'], ['tcp', '1.2.3.4:99999']] as const) {
      expect(() => sys.listenSocket(kind, address, 16, false)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
    expect(() => sys.listenSocket('sctp' as never, '1.2.3.4:1', 1, false)).toThrow(TypeError);
  });

  it('leaves IPV6_V6ONLY to the kernel default, as systemd BindIPv6Only=default does', async () => {
    const port = await freePort();
    const fd = sys.listenSocket('tcp', `[::]:${port}`, 16, false);
    try {
      const bindv6only = readFileSync('/proc/sys/net/ipv6/bindv6only', 'utf8').trim();
      // Dual-stack unless the sysctl says otherwise: 127.0.0.1:PORT is then taken too.
      if (bindv6only === '0') expect(() => sys.listenSocket('tcp', `127.0.0.1:${port}`, 16, false)).toThrow(expect.objectContaining({ code: 'EADDRINUSE' }));
    } finally {
      sys.close(fd);
    }
  });
});
