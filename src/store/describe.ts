/**
 * Pure: turn what fstat/getsockopt said about a stored fd into the words
 * `fdstore ls` prints (F3.34's columns plus a socket-level type).
 */

export type FdType = 'tcp_listen' | 'tcp' | 'udp' | 'unix_listen' | 'unix' | 'memfd' | 'pipe' | 'file' | 'other';
export const FD_TYPES: readonly FdType[] = ['tcp_listen', 'tcp', 'udp', 'unix_listen', 'unix', 'memfd', 'pipe', 'file', 'other'];

export interface RawFdInfo {
  mode: number;
  flags: number;
  path: string;
  family: number;
  sockType: number;
  listening: boolean;
}

const S_IFMT = 0o170000;
const INODE_TYPES: Record<number, string> = {
  0o140000: 'sock',
  0o120000: 'lnk',
  0o100000: 'reg',
  0o060000: 'blk',
  0o040000: 'dir',
  0o020000: 'chr',
  0o010000: 'fifo',
};

const AF_UNIX = 1;
const AF_INET = 2;
const AF_INET6 = 10;
const SOCK_STREAM = 1;
const SOCK_DGRAM = 2;

/** systemd's inode type word; anonymous inodes (eventfd, epoll...) have no type bits. */
export function inodeType(mode: number): string {
  return INODE_TYPES[mode & S_IFMT] ?? 'anon';
}

export function fdType(i: RawFdInfo): FdType {
  switch (inodeType(i.mode)) {
    case 'sock':
      if (i.family === AF_INET || i.family === AF_INET6) {
        if (i.sockType === SOCK_STREAM) return i.listening ? 'tcp_listen' : 'tcp';
        if (i.sockType === SOCK_DGRAM) return 'udp';
        return 'other';
      }
      if (i.family === AF_UNIX) return i.listening ? 'unix_listen' : 'unix';
      return 'other';
    case 'reg':
      // memfd_create files are regular files whose /proc link reads "/memfd:NAME (deleted)".
      return i.path.startsWith('/memfd:') ? 'memfd' : 'file';
    case 'fifo':
      return 'pipe';
    default:
      return 'other';
  }
}

const O_ACCMODE = 3;

/** F3.34: ro / wo / rw. */
export function accessMode(flags: number): 'ro' | 'wo' | 'rw' {
  switch (flags & O_ACCMODE) {
    case 0:
      return 'ro';
    case 1:
      return 'wo';
    default:
      return 'rw';
  }
}

/** "major:minor" of a Linux dev_t (glibc's encoding). */
export function devString(dev: number): string {
  const d = BigInt(dev);
  const major = ((d >> 8n) & 0xfffn) | ((d >> 32n) & ~0xfffn);
  const minor = (d & 0xffn) | ((d >> 12n) & 0xffffff00n);
  return `${major}:${minor}`;
}
