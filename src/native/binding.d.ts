/**
 * The exact interface of the native addon (agent/addon, built to
 * agent/addon/build/Release/fdstore.node). Syscall-shaped: every verb returns
 * plain data, or a negative errno (a number < 0) on failure. Arguments are
 * asserted in C, not validated: src/native/sys.ts is the only caller and checks them.
 *
 * Fd ownership: any fd number returned here belongs to the caller, who must close
 * it exactly once (close()). All fds are created/received close-on-exec.
 */

/** One datagram read from a notify socket by recvNotify(). */
export interface NotifyDatagram {
  /** Payload bytes (at most maxBytes). Empty when the datagram was truncated. */
  data: Buffer;
  /** True when SCM_CREDENTIALS was present. */
  hasCreds: boolean;
  /** Credential pid as the kernel translated it into our PID namespace (0 = not visible). */
  pid: number;
  uid: number;
  gid: number;
  /** Received fds, in SCM_RIGHTS order; owned by the caller. Empty if truncated. */
  fds: number[];
  /**
   * Per received fd, 4 numbers: st_dev, st_ino, st_mode, F_GETFL flags (O_LARGEFILE
   * masked). If fstat failed for an fd its mode is 0.
   */
  stats: Float64Array;
  /** MSG_TRUNC: payload longer than maxBytes. The addon already closed every fd. */
  truncated: boolean;
  /** MSG_CTRUNC: control data truncated. The addon already closed every fd that arrived. */
  ctruncated: boolean;
  /** How many fds the addon closed itself because of truncation. */
  closedFds: number;
}

/** Peer of an accepted connection (SO_PEERCRED; pidfd from SO_PEERPIDFD or -1). */
export interface Accepted {
  fd: number;
  pid: number;
  uid: number;
  gid: number;
  /** SO_PEERPIDFD (Linux >= 6.5) or -1; owned by the caller. */
  pidfd: number;
}

/** What fdstore ls shows about one fd (systemd-analyze fdstore plus socket details). */
export interface FdInfo {
  mode: number;
  dev: number;
  ino: number;
  rdev: number;
  /** F_GETFL with O_LARGEFILE masked. */
  flags: number;
  /** readlink("/proc/self/fd/N"); "" if unreadable. */
  path: string;
  /** For sockets: AF_* family, SOCK_* type, SO_ACCEPTCONN; -1 otherwise. */
  family: number;
  sockType: number;
  listening: boolean;
  /** getsockname() rendered: "127.0.0.1:80", "[::1]:80", "/path", "@abstract", "" unnamed. */
  localAddress: string;
  /** getpeername() rendered the same way; "" if not connected. */
  peerAddress: string;
}

export interface PollHandle {
  readonly __brand: 'PollHandle';
}

/** Duplicate-detection method for sameFile(): 0 auto, 1 F_DUPFD_QUERY, 2 kcmp, 3 fstat. */
export type DedupeMethod = 0 | 1 | 2 | 3;

export interface Binding {
  /** socket(AF_UNIX, SOCK_DGRAM|NONBLOCK|CLOEXEC), SO_PASSCRED, SO_RCVBUFFORCE (falls back to SO_RCVBUF) = rcvbuf, unlink(path), bind(path). fd or -errno. */
  notifySocket(path: string, rcvbuf: number): number;
  /** socket(AF_UNIX, SOCK_SEQPACKET|NONBLOCK|CLOEXEC), unlink(path), bind, listen(backlog). fd or -errno. */
  seqpacketListen(path: string, backlog: number): number;
  /** socket(AF_UNIX, SOCK_STREAM|NONBLOCK|CLOEXEC), unlink(path), bind, listen(backlog). fd or -errno. */
  streamListen(path: string, backlog: number): number;
  /**
   * One recvmsg(MSG_DONTWAIT|MSG_CMSG_CLOEXEC) with room for maxBytes of payload and
   * SCM_CREDENTIALS + maxFds fds. null on EAGAIN/EINTR, -errno on other errors.
   */
  recvNotify(fd: number, maxBytes: number, maxFds: number): NotifyDatagram | null | number;
  /** accept4(NONBLOCK|CLOEXEC) + SO_PEERCRED (+ SO_PEERPIDFD). null on EAGAIN, -errno on error. */
  accept(fd: number): Accepted | null | number;
  /** sendmsg(MSG_DONTWAIT|MSG_NOSIGNAL) of data with fds in SCM_RIGHTS (none if empty). Bytes sent or -errno (-EAGAIN when full). */
  sendFds(fd: number, data: Buffer, fds: number[]): number;
  /** recv(MSG_DONTWAIT) up to max bytes: Buffer (empty = EOF), null on EAGAIN, -errno. */
  recv(fd: number, max: number): Buffer | null | number;
  /** close(fd): 0 or -errno. */
  close(fd: number): number;

  /**
   * Watch fd in Node's event loop (uv_poll_t on napi_get_uv_event_loop): cb(status, events)
   * runs on the main thread whenever fd is ready for events (1 = readable, 2 = writable,
   * as UV_READABLE/UV_WRITABLE; 4 = UV_DISCONNECT). status < 0 is a libuv error.
   * The handle keeps the loop alive until pollStop(). The fd is not owned by the handle.
   * libuv sets O_NONBLOCK on fd. Throws an Error with `code` (e.g. 'EPERM' for a regular
   * file, 'EEXIST' if fd is already watched in this loop), `errno` (negative, libuv-style)
   * and `syscall` ('uv_poll_init' / 'uv_poll_start') when libuv refuses the fd.
   */
  pollStart(fd: number, events: number, cb: (status: number, events: number) => void): PollHandle;
  /** Change the events of a started handle. Throws on a stopped handle. */
  pollUpdate(handle: PollHandle, events: number): void;
  /** uv_poll_stop + uv_close; idempotent. Call before closing the fd. */
  pollStop(handle: PollHandle): void;

  /** epoll_create1(EPOLL_CLOEXEC): fd or -errno. */
  epollCreate(): number;
  /** epoll_ctl(ADD, fd, events = 0, data.u64 = key): only EPOLLHUP/EPOLLERR are reported. 0 or -errno (-EPERM: not pollable). key < 2^53. */
  epollAdd(epfd: number, fd: number, key: number): number;
  /** epollAdd for many fds in one call (fds[i] with keys[i]): 0 or -errno per fd. */
  epollAddMany(epfd: number, fds: number[], keys: number[]): Int32Array;
  /** epoll_ctl(DEL). 0 or -errno. */
  epollDel(epfd: number, fd: number): number;
  /** epoll_wait(timeout 0) up to max events: flat [key, events, key, events, ...]; -errno on error. */
  epollWait(epfd: number, max: number): number[] | number;

  /** Same open file description? 1 yes, 0 no, -errno (e.g. -EINVAL/-ENOSYS/-EPERM if method unavailable). Auto: F_DUPFD_QUERY -> kcmp(KCMP_FILE) -> fstat (dev+ino, not chr/blk, equal F_GETFL). */
  sameFile(a: number, b: number, method: DedupeMethod): number;
  /** fstat + F_GETFL + readlink + socket details. -errno if fstat fails. */
  fdInfo(fd: number): FdInfo | number;
  /** pidfd_open(pid, 0): fd (readable when the process exits) or -errno. */
  pidfdOpen(pid: number): number;
  /** RLIMIT_NOFILE: [soft, hard] (RLIM_INFINITY as -1). */
  getNofile(): [number, number];
  /** Set the soft RLIMIT_NOFILE. 0 or -errno. */
  setNofile(soft: number): number;
  /** Number of open fds of this process (count of /proc/self/fd entries, minus the dirfd). */
  countFds(): number;
  /** Grow the fd table now so fd numbers below n need no growth later (each growth waits for RCU in a threaded process). 0 or -errno. */
  reserveFds(n: number): number;

  /**
   * Socket activation (agent/addon/activation.c, systemd's socket_address_listen):
   * socket(CLOEXEC, blocking), SO_REUSEPORT if reusePort (inet only), SO_REUSEADDR,
   * bind, chmod 0666 (unix paths), listen(backlog) (streams). kind: 0 tcp, 1 udp,
   * 2 unix-stream, 3 unix-dgram. address: "A.B.C.D:PORT", "[V6]:PORT", "/path" or
   * "@abstract". A path in use by a socket file is unlinked and bound again.
   * fd or -errno (-EINVAL: address not of the kind's form).
   */
  listenSocket(kind: number, address: string, backlog: number, reusePort: number): number;
  /** fcntl(F_SETFL) O_NONBLOCK on (1) or off (0). 0 or -errno. */
  setNonblock(fd: number, on: number): number;

  /** flock(fd, LOCK_EX|LOCK_NB): 0, -EWOULDBLOCK (held by another open file description) or -errno. */
  lockExclusive(fd: number): number;
  /** prctl(PR_SET_DUMPABLE, on ? 1 : 0): 0 or -errno. */
  setDumpable(on: number): number;
  /** prctl(PR_GET_DUMPABLE): 0, 1 (or 2) or -errno. */
  getDumpable(): number;
  /** fchmodat(dirfd, name, mode, AT_SYMLINK_NOFOLLOW): 0 or -errno (-EOPNOTSUPP for a symlink). */
  chmodAt(dirfd: number, name: string, mode: number): number;

  /** Keeper (agent/addon/keeper.c): socket(AF_UNIX, SOCK_SEQPACKET|NONBLOCK|CLOEXEC) + connect(path) + SO_PEERCRED (pidfd -1). -errno on failure (-EAGAIN: backlog full). */
  keeperConnect(path: string): Accepted | number;
  /** sendFds, waiting up to timeoutMs for room (poll POLLOUT): bytes, -ETIMEDOUT or -errno. */
  keeperSend(fd: number, data: Buffer, fds: number[], timeoutMs: number): number;
  /** poll(POLLIN) up to timeoutMs: 1 readable, 0 timed out, -errno. */
  waitReadable(fd: number, timeoutMs: number): number;
}
