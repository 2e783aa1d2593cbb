/**
 * The one wrapper around the native addon: validates arguments (the addon only
 * asserts), turns negative errno into a SysError with `code`, `errno`, `syscall`,
 * and keeps the addon's "null = try again later" results (EAGAIN/EINTR).
 *
 * Fd ownership is as in binding.d.ts: every fd number returned is the caller's to
 * close exactly once.
 */
import { constants as osConstants } from 'node:os';
import { getSystemErrorMap } from 'node:util';
import type { Accepted, DedupeMethod, FdInfo, NotifyDatagram, PollHandle } from './binding.js';
import { binding } from './load.js';

export type { Accepted, DedupeMethod, FdInfo, NotifyDatagram, PollHandle } from './binding.js';

/** uv_poll events (UV_READABLE, UV_WRITABLE, UV_DISCONNECT). */
export const POLL_READABLE = 1;
export const POLL_WRITABLE = 2;
export const POLL_DISCONNECT = 4;

/** epoll event bits as epollWait() reports them. */
export const EPOLLIN = 0x001;
export const EPOLLERR = 0x008;
export const EPOLLHUP = 0x010;

/** sameFile() methods (F3.12). */
export const DEDUPE_AUTO = 0;
export const DEDUPE_DUPFD_QUERY = 1;
export const DEDUPE_KCMP = 2;
export const DEDUPE_FSTAT = 3;

import { FDS_PER_MSG, NOTIFY_BYTES_MAX, NOTIFY_FDS_MAX } from './proto.js';
export { FDS_PER_MSG, NOTIFY_BYTES_MAX, NOTIFY_FDS_MAX };

/** sockaddr_un.sun_path holds 108 bytes including the terminating NUL. */
const UNIX_PATH_MAX = 107;
const INT32_MAX = 0x7fffffff;

// Several names share a number (EAGAIN/EWOULDBLOCK, ENOTSUP/EOPNOTSUPP): the
// first one listed wins, which is the name callers compare against.
const errnoNames = new Map<number, string>();
for (const [name, value] of Object.entries(osConstants.errno)) {
  if (!errnoNames.has(value)) errnoNames.set(value, name);
}
const errnoDescriptions = getSystemErrorMap();

/** Name of a positive errno ('EAGAIN'), or 'E<n>' when unknown. */
export function errnoName(errno: number): string {
  return errnoNames.get(errno) ?? errnoDescriptions.get(-errno)?.[0] ?? `E${errno}`;
}

/** A failed system call. Branch on `code`, never on the message. */
export class SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly syscall: string;

  /** @param errno positive errno value */
  constructor(syscall: string, errno: number) {
    const code = errnoName(errno);
    const text = errnoDescriptions.get(-errno)?.[1];
    super(`${syscall}: ${code}${text ? ` (${text})` : ''}`);
    this.name = 'SysError';
    this.code = code;
    this.errno = errno;
    this.syscall = syscall;
  }
}

function check(syscall: string, r: number): number {
  if (r < 0) throw new SysError(syscall, -r);
  return r;
}

function assertInt(what: string, v: unknown, min: number, max: number): asserts v is number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`${what} must be an integer in [${min}, ${max}], got ${String(v)}`);
  }
}

function assertFd(v: unknown, what = 'fd'): asserts v is number {
  assertInt(what, v, 0, INT32_MAX);
}

function assertPath(path: unknown): asserts path is string {
  if (typeof path !== 'string' || path.length === 0 || path.includes('\0')) {
    throw new TypeError('socket path must be a non-empty string without NUL');
  }
  if (Buffer.byteLength(path) > UNIX_PATH_MAX) {
    throw new SysError('bind', osConstants.errno.ENAMETOOLONG);
  }
}

/** AF_UNIX SOCK_DGRAM notify socket bound at path with SO_PASSCRED; rcvbuf in bytes. */
export function notifySocket(path: string, rcvbuf: number): number {
  assertPath(path);
  assertInt('rcvbuf', rcvbuf, 1, INT32_MAX);
  return check('notifySocket', binding.notifySocket(path, rcvbuf));
}

/** AF_UNIX SOCK_SEQPACKET listener (restore socket). */
export function seqpacketListen(path: string, backlog = 16): number {
  assertPath(path);
  assertInt('backlog', backlog, 0, INT32_MAX);
  return check('seqpacketListen', binding.seqpacketListen(path, backlog));
}

/** AF_UNIX SOCK_STREAM listener (admin socket). */
export function streamListen(path: string, backlog = 16): number {
  assertPath(path);
  assertInt('backlog', backlog, 0, INT32_MAX);
  return check('streamListen', binding.streamListen(path, backlog));
}

/**
 * One datagram from a notify socket, or null when none is queued (EAGAIN/EINTR).
 * Throws SysError for any other receive error (D1.13: stop servicing the socket).
 */
export function recvNotify(fd: number, maxBytes = NOTIFY_BYTES_MAX, maxFds = NOTIFY_FDS_MAX): NotifyDatagram | null {
  assertFd(fd);
  assertInt('maxBytes', maxBytes, 0, 1 << 20);
  assertInt('maxFds', maxFds, 0, 65536);
  const r = binding.recvNotify(fd, maxBytes, maxFds);
  if (typeof r === 'number') throw new SysError('recvmsg', -r);
  return r;
}

/** accept4 + peer credentials, or null when no connection is pending. */
export function accept(fd: number): Accepted | null {
  assertFd(fd);
  const r = binding.accept(fd);
  if (typeof r === 'number') throw new SysError('accept4', -r);
  return r;
}

/** sendmsg with fds in SCM_RIGHTS: bytes sent, or null when the socket is full (EAGAIN). */
export function sendFds(fd: number, data: Buffer, fds: readonly number[] = []): number | null {
  assertFd(fd);
  if (!Buffer.isBuffer(data)) throw new TypeError('data must be a Buffer');
  if (!Array.isArray(fds) || fds.length > FDS_PER_MSG) {
    throw new RangeError(`fds must be an array of at most ${FDS_PER_MSG} fds`);
  }
  for (const f of fds) assertFd(f, 'fds[]');
  const r = binding.sendFds(fd, data, [...fds]);
  if (r === -osConstants.errno.EAGAIN) return null;
  return check('sendmsg', r);
}

/** recv up to max bytes: a Buffer (empty = EOF) or null when nothing is queued. */
export function recv(fd: number, max: number): Buffer | null {
  assertFd(fd);
  assertInt('max', max, 1, 1 << 24);
  const r = binding.recv(fd, max);
  if (typeof r === 'number') throw new SysError('recv', -r);
  return r;
}

/** close(fd); throws SysError (EBADF means an ownership bug somewhere). */
export function close(fd: number): void {
  assertFd(fd);
  check('close', binding.close(fd));
}

/** close(fd) for cleanup paths that must not throw: true if it closed. */
export function tryClose(fd: number): boolean {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > INT32_MAX) return false;
  return binding.close(fd) === 0;
}

/**
 * Watch fd in Node's event loop; cb(status, events) with POLL_* bits, status < 0 a
 * libuv (negative errno) error. Keeps the process alive until pollStop(). Throws
 * SysError when libuv refuses the fd (EPERM for regular files, EEXIST if watched).
 * libuv sets O_NONBLOCK on the fd.
 */
export function pollStart(fd: number, events: number, cb: (status: number, events: number) => void): PollHandle {
  assertFd(fd);
  assertInt('events', events, 0, 15);
  if (typeof cb !== 'function') throw new TypeError('cb must be a function');
  try {
    return binding.pollStart(fd, events, cb);
  } catch (err) {
    const e = err as { errno?: unknown; syscall?: unknown };
    if (typeof e.errno === 'number' && e.errno < 0) {
      throw new SysError(typeof e.syscall === 'string' ? e.syscall : 'uv_poll_start', -e.errno);
    }
    throw err;
  }
}

/** Change the events of a started handle; throws on a stopped one. */
export function pollUpdate(handle: PollHandle, events: number): void {
  assertInt('events', events, 0, 15);
  binding.pollUpdate(handle, events);
}

/** Stop and release a handle; idempotent, safe inside its own callback. Call before closing the fd. */
export function pollStop(handle: PollHandle): void {
  binding.pollStop(handle);
}

export function epollCreate(): number {
  return check('epoll_create1', binding.epollCreate());
}

/**
 * Watch fd for EPOLLHUP/EPOLLERR only (events = 0), reported with key. Throws
 * SysError; `code === 'EPERM'` means the fd cannot be polled (regular file,
 * memfd, directory) and is stored unpolled (F3.16). key: a safe integer >= 0.
 */
export function epollAdd(epfd: number, fd: number, key: number): void {
  assertFd(epfd, 'epfd');
  assertFd(fd);
  assertInt('key', key, 0, Number.MAX_SAFE_INTEGER);
  check('epoll_ctl', binding.epollAdd(epfd, fd, key));
}

/** epollAdd for a batch: 0 or -errno per fd (no throw: the caller decides per fd, F3.16). */
export function epollAddMany(epfd: number, fds: number[], keys: number[]): Int32Array {
  assertFd(epfd, 'epfd');
  if (fds.length !== keys.length || fds.length > NOTIFY_FDS_MAX) throw new RangeError(`fds and keys: equal length, at most ${NOTIFY_FDS_MAX}`);
  return binding.epollAddMany(epfd, fds, keys);
}

export function epollDel(epfd: number, fd: number): void {
  assertFd(epfd, 'epfd');
  assertFd(fd);
  check('epoll_ctl', binding.epollDel(epfd, fd));
}

export interface EpollEvent {
  key: number;
  /** EPOLLHUP / EPOLLERR bits. */
  events: number;
}

/** Ready events without blocking (timeout 0), at most max (<= 64) per call. */
export function epollWait(epfd: number, max = 64): EpollEvent[] {
  assertFd(epfd, 'epfd');
  assertInt('max', max, 1, 64);
  const r = binding.epollWait(epfd, max);
  if (typeof r === 'number') throw new SysError('epoll_wait', -r);
  const out: EpollEvent[] = [];
  for (let i = 0; i + 1 < r.length; i += 2) out.push({ key: r[i]!, events: r[i + 1]! });
  return out;
}

/**
 * Same open file description? Throws SysError when the method cannot answer
 * (EINVAL: no F_DUPFD_QUERY; ENOSYS/EPERM: kcmp unavailable; EBADF). Auto picks
 * the first available method once per process.
 */
export function sameFile(a: number, b: number, method: DedupeMethod = DEDUPE_AUTO): boolean {
  assertFd(a, 'a');
  assertFd(b, 'b');
  assertInt('method', method, 0, 3);
  return check('sameFile', binding.sameFile(a, b, method)) === 1;
}

export function fdInfo(fd: number): FdInfo {
  assertFd(fd);
  const r = binding.fdInfo(fd);
  if (typeof r === 'number') throw new SysError('fstat', -r);
  return r;
}

/** pidfd_open(pid): readable once the process has exited. */
export function pidfdOpen(pid: number): number {
  assertInt('pid', pid, 1, INT32_MAX);
  return check('pidfd_open', binding.pidfdOpen(pid));
}

/** RLIMIT_NOFILE; Infinity for RLIM_INFINITY. */
export function getNofile(): { soft: number; hard: number } {
  const [soft, hard] = binding.getNofile();
  return { soft: soft < 0 ? Infinity : soft, hard: hard < 0 ? Infinity : hard };
}

/** Set the soft RLIMIT_NOFILE (Infinity for RLIM_INFINITY); EPERM above the hard limit. */
export function setNofile(soft: number): void {
  if (soft !== Infinity) assertInt('soft', soft, 0, Number.MAX_SAFE_INTEGER);
  check('setrlimit', binding.setNofile(soft === Infinity ? -1 : soft));
}

/** Open fds of this process (tests assert it is unchanged around a receive). */
/** Pre-grow the fd table for fd numbers below n (see binding.d.ts). */
export function reserveFds(n: number): void {
  assertInt('n', n, 1, INT32_MAX);
  check('fcntl', binding.reserveFds(n));
}

export function countFds(): number {
  return check('countFds', binding.countFds());
}

/** Kinds of socket-activation sockets, as the config names them. */
export type ListenKind = 'tcp' | 'udp' | 'unix-stream' | 'unix-dgram';
const LISTEN_KIND_CODES: Record<ListenKind, number> = { tcp: 0, udp: 1, 'unix-stream': 2, 'unix-dgram': 3 };

/**
 * A socket-activation socket, bound (and listening, for streams) as systemd binds
 * a .socket unit's: close-on-exec, blocking (NonBlocking=no), SO_REUSEADDR,
 * SO_REUSEPORT when asked (tcp/udp), IPV6_V6ONLY left to the kernel default,
 * unix paths chmod 0666. address: "A.B.C.D:PORT" / "[V6]:PORT" for tcp/udp,
 * "/absolute/path" or "@abstract" for unix. Throws SysError (EINVAL: malformed
 * address, EADDRINUSE, EACCES...).
 */
export function listenSocket(kind: ListenKind, address: string, backlog: number, reusePort: boolean): number {
  const code = LISTEN_KIND_CODES[kind];
  if (code === undefined) throw new TypeError(`kind must be one of ${Object.keys(LISTEN_KIND_CODES).join(', ')}`);
  if (typeof address !== 'string' || address.length === 0 || address.includes('\0')) {
    throw new TypeError('address must be a non-empty string without NUL');
  }
  if (code >= 2 && Buffer.byteLength(address) > UNIX_PATH_MAX) throw new SysError('bind', osConstants.errno.ENAMETOOLONG);
  assertInt('backlog', backlog, 0, INT32_MAX);
  if (typeof reusePort !== 'boolean') throw new TypeError('reusePort must be a boolean');
  return check('listenSocket', binding.listenSocket(code, address, backlog, reusePort ? 1 : 0));
}

/** Set or clear O_NONBLOCK on fd (shared by every copy of the open file description). */
export function setNonblock(fd: number, on: boolean): void {
  assertFd(fd);
  check('fcntl', binding.setNonblock(fd, on ? 1 : 0));
}

/**
 * flock(LOCK_EX|LOCK_NB) on fd: true if taken, false if another open file
 * description holds it (EWOULDBLOCK). Held until every copy of fd is closed.
 */
export function lockExclusive(fd: number): boolean {
  assertFd(fd);
  const r = binding.lockExclusive(fd);
  if (r === -osConstants.errno.EWOULDBLOCK) return false;
  check('flock', r);
  return true;
}

/** prctl(PR_SET_DUMPABLE): false keeps same-uid processes out of /proc/self/{fd,root,mem}. */
export function setDumpable(on: boolean): void {
  check('prctl', binding.setDumpable(on ? 1 : 0));
}

export function isDumpable(): boolean {
  return check('prctl', binding.getDumpable()) !== 0;
}

/** chmod of name in the directory dirfd, never through a symlink (EOPNOTSUPP for one). */
export function chmodAt(dirfd: number, name: string, mode: number): void {
  assertFd(dirfd, 'dirfd');
  if (typeof name !== 'string' || name.length === 0 || name.includes('\0') || name.includes('/')) {
    throw new TypeError('name must be one non-empty path component');
  }
  assertInt('mode', mode, 0, 0o7777);
  check('fchmodat', binding.chmodAt(dirfd, name, mode));
}

/** Connect to the keeper's SEQPACKET socket at path; the peer's credentials come with it (pidfd -1). */
export function keeperConnect(path: string): Accepted {
  assertPath(path);
  const r = binding.keeperConnect(path);
  if (typeof r === 'number') throw new SysError('connect', -r);
  return r;
}

/** sendmsg with fds, waiting at most timeoutMs for room: bytes sent; throws (ETIMEDOUT when the peer does not read). */
export function keeperSend(fd: number, data: Buffer, fds: readonly number[], timeoutMs: number): number {
  assertFd(fd);
  if (!Buffer.isBuffer(data)) throw new TypeError('data must be a Buffer');
  if (!Array.isArray(fds) || fds.length > FDS_PER_MSG) throw new RangeError(`fds must be an array of at most ${FDS_PER_MSG} fds`);
  for (const f of fds) assertFd(f, 'fds[]');
  assertInt('timeoutMs', timeoutMs, 0, INT32_MAX);
  return check('sendmsg', binding.keeperSend(fd, data, [...fds], timeoutMs));
}

/** Wait up to timeoutMs for fd to be readable: true if it is. */
export function waitReadable(fd: number, timeoutMs: number): boolean {
  assertFd(fd);
  assertInt('timeoutMs', timeoutMs, 0, INT32_MAX);
  return check('poll', binding.waitReadable(fd, timeoutMs)) === 1;
}
