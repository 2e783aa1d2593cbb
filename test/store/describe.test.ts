// What `fdstore ls` prints about a stored fd (F3.33/F3.34 columns + socket type).
import { describe, expect, it } from 'vitest';
import { FD_TYPES, accessMode, devString, fdType, inodeType, type RawFdInfo } from '../../src/store/describe.js';

const S_IFSOCK = 0o140000;
const S_IFLNK = 0o120000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;
const S_IFDIR = 0o040000;
const S_IFCHR = 0o020000;
const S_IFIFO = 0o010000;
const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const AF_NETLINK = 16;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;
const SOCK_SEQPACKET = 5;
const O_RDONLY = 0;
const O_WRONLY = 1;
const O_RDWR = 2;
const O_APPEND = 0o2000;
const O_NONBLOCK = 0o4000;

function info(over: Partial<RawFdInfo>): RawFdInfo {
  return { mode: S_IFSOCK | 0o777, flags: O_RDWR, path: '', family: 0, sockType: 0, listening: false, ...over };
}

/** glibc's makedev. */
function makedev(major: number, minor: number): number {
  const M = BigInt(major);
  const m = BigInt(minor);
  return Number(((M & 0xfffn) << 8n) | ((M & ~0xfffn) << 32n) | (m & 0xffn) | ((m & ~0xffn) << 12n));
}

describe('F3.34 inodeType', () => {
  it.each([
    [S_IFSOCK, 'sock'],
    [S_IFLNK, 'lnk'],
    [S_IFREG, 'reg'],
    [S_IFBLK, 'blk'],
    [S_IFDIR, 'dir'],
    [S_IFCHR, 'chr'],
    [S_IFIFO, 'fifo'],
  ])('F3.34: mode %o is %s', (mode, word) => {
    expect(inodeType(mode)).toBe(word);
    expect(inodeType(mode | 0o7777)).toBe(word);
  });

  it('F3.34: no type bits (anonymous inode: eventfd, epoll) is anon', () => {
    expect(inodeType(0o600)).toBe('anon');
    expect(inodeType(0)).toBe('anon');
  });
});

describe('fdType', () => {
  it.each<[string, Partial<RawFdInfo>, string]>([
    ['listening TCP v4', { family: AF_INET, sockType: SOCK_STREAM, listening: true }, 'tcp_listen'],
    ['listening TCP v6', { family: AF_INET6, sockType: SOCK_STREAM, listening: true }, 'tcp_listen'],
    ['connected TCP', { family: AF_INET, sockType: SOCK_STREAM }, 'tcp'],
    ['UDP v4', { family: AF_INET, sockType: SOCK_DGRAM }, 'udp'],
    ['UDP v6', { family: AF_INET6, sockType: SOCK_DGRAM }, 'udp'],
    ['SCTP-ish seqpacket on inet', { family: AF_INET, sockType: SOCK_SEQPACKET }, 'other'],
    ['listening unix stream', { family: AF_UNIX, sockType: SOCK_STREAM, listening: true }, 'unix_listen'],
    ['unix stream', { family: AF_UNIX, sockType: SOCK_STREAM }, 'unix'],
    ['unix datagram', { family: AF_UNIX, sockType: SOCK_DGRAM }, 'unix'],
    ['netlink', { family: AF_NETLINK, sockType: SOCK_DGRAM }, 'other'],
    ['memfd', { mode: S_IFREG | 0o777, path: '/memfd:state (deleted)' }, 'memfd'],
    ['regular file', { mode: S_IFREG | 0o644, path: '/var/lib/app/db' }, 'file'],
    ['file whose name merely contains memfd', { mode: S_IFREG, path: '/tmp/memfd:x' }, 'file'],
    ['pipe', { mode: S_IFIFO | 0o600, path: 'pipe:[1234]' }, 'pipe'],
    ['directory', { mode: S_IFDIR | 0o755 }, 'other'],
    ['char device', { mode: S_IFCHR | 0o666, path: '/dev/null' }, 'other'],
    ['anon inode', { mode: 0o600, path: 'anon_inode:[eventfd]' }, 'other'],
  ])('%s -> %s', (_what, over, want) => {
    const t = fdType(info(over));
    expect(t).toBe(want);
    expect(FD_TYPES).toContain(t);
  });
});

describe('F3.34 accessMode', () => {
  it.each([
    [O_RDONLY, 'ro'],
    [O_WRONLY, 'wo'],
    [O_RDWR, 'rw'],
    [O_RDONLY | O_NONBLOCK, 'ro'],
    [O_WRONLY | O_APPEND | O_NONBLOCK, 'wo'],
    [O_RDWR | O_NONBLOCK, 'rw'],
  ])('F3.34: flags %o -> %s', (flags, want) => {
    expect(accessMode(flags)).toBe(want);
  });
});

describe('F3.34 devString', () => {
  it.each([
    [0, 0],
    [8, 1],
    [259, 0],
    [8, 300],
    [4096, 7],
    [1, 1 << 19],
  ])('F3.34: makedev(%i, %i) renders as major:minor', (major, minor) => {
    expect(devString(makedev(major, minor))).toBe(`${major}:${minor}`);
  });

  it('F3.34: known encodings', () => {
    expect(devString(0x801)).toBe('8:1');
    expect(devString(0)).toBe('0:0');
  });
});
