/**
 * Trusted paths in the run dir (issue 7 item 10; docs/security.md "The run dir").
 *
 * The run dir is shared with code the agent does not trust (an emptyDir is
 * 0777), so nothing found there is used as is:
 *   - DIR must be a directory (never a symlink), owned by the agent's uid or root.
 *     Writable by group/others is accepted only with the sticky bit (the /tmp
 *     model: nobody can rename or remove the agent's entries) or when the agent
 *     cannot fix it (a root-owned emptyDir, agent non-root): then it is logged.
 *     When the agent owns it, it sets the sticky bit itself.
 *   - DIR/NAME and DIR/.fdstore must be directories owned by the agent's uid and
 *     not writable by group or others. Missing ones are created with their mode.
 *   - Every later open, bind, chmod and rename goes through an fd of the checked
 *     directory (/proc/self/fd/N/entry: openat semantics without an addon verb), so
 *     a directory swapped for a symlink after the check is never followed.
 * Every refusal is one RunDirError naming the path and its owner; the CLI exits 2.
 */
import { closeSync, constants, fchmodSync, fstatSync, ftruncateSync, lstatSync, mkdirSync, openSync, readSync, writeSync, type Stats } from 'node:fs';
import { dirname, join, parse } from 'node:path';
import type { Kernel } from '../native/kernel.js';

/** A run dir the agent refuses to use; the CLI exits 2 (a configuration problem). */
export class RunDirError extends Error {
  readonly code = 'ERUNDIR';
  constructor(message: string) {
    super(message);
    this.name = 'RunDirError';
  }
}

/** Group- or other-writable bits. */
const SHARED_WRITE = 0o022;
const STICKY = 0o1000;
/** open(2) flags for a directory that must not be a symlink (libuv adds O_CLOEXEC). */
const O_DIR_NOFOLLOW = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** The lock file holds "PID\n"; 32 bytes is plenty. */
const LOCK_READ_MAX = 32;

/** Path of entry `name` in the directory open as dirfd: resolves through the fd, never through DIR's path again. */
export function at(dirfd: number, name: string): string {
  return `/proc/self/fd/${dirfd}/${name}`;
}

function mode(st: Stats): string {
  return `0${(st.mode & 0o7777).toString(8)}`;
}

function errCode(e: unknown): string {
  return (e as NodeJS.ErrnoException).code ?? 'EIO';
}

function owner(path: string): string {
  try {
    const st = lstatSync(path);
    return `owned by uid ${st.uid}`;
  } catch {
    return 'owner unknown';
  }
}

/**
 * Create the missing ancestors of path one mkdir at a time. Not Node's
 * recursive mkdir: on /proc it loops forever (mkdir says ENOENT although the
 * parent exists), synchronously, so not even SIGTERM gets through (item 14).
 */
export function makeParents(path: string, what = 'run dir'): void {
  const missing: string[] = [];
  const { root } = parse(path);
  for (let p = dirname(path); p !== root && p !== '.'; p = dirname(p)) {
    try {
      lstatSync(p);
      break;
    } catch (e) {
      if (errCode(e) !== 'ENOENT') throw new RunDirError(`cannot use ${what} ${path}: ${p}: ${errCode(e)}`);
      missing.unshift(p);
    }
  }
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o755 });
    } catch (e) {
      if (errCode(e) !== 'EEXIST') throw new RunDirError(`cannot create ${p} (parent of ${what} ${path}): ${errCode(e)}`);
    }
  }
}

/** Open path as a directory without following a symlink; refusals name the path and its owner. */
function openDir(path: string, open: string, what: string): number {
  try {
    return openSync(open, O_DIR_NOFOLLOW);
  } catch (e) {
    const code = errCode(e);
    // O_DIRECTORY|O_NOFOLLOW on a symlink fails with ENOTDIR (or ELOOP): lstat tells which it was.
    if (code === 'ELOOP' || code === 'ENOTDIR') {
      let link = code === 'ELOOP';
      try {
        link = lstatSync(path).isSymbolicLink();
      } catch {
        // gone meanwhile: report what open said
      }
      if (link) throw new RunDirError(`${what}${path} is a symlink (${owner(path)}): refusing to follow it`);
      throw new RunDirError(`${what}${path} is not a directory (${owner(path)})`);
    }
    throw new RunDirError(`cannot open ${what}${path}: ${code}`);
  }
}

export interface RunDir {
  /** O_DIRECTORY fd of DIR; the caller closes it. */
  fd: number;
  /** Set when DIR is shared-writable and the agent could not fix it (logged by the caller). */
  note: string | null;
}

/** Check (creating it if missing) the run dir itself. */
export function openRunDir(path: string, uid: number): RunDir {
  makeParents(path);
  try {
    mkdirSync(path, { mode: 0o755 });
  } catch (e) {
    if (errCode(e) !== 'EEXIST') throw new RunDirError(`cannot create run dir ${path}: ${errCode(e)}`);
  }
  const fd = openDir(path, path, 'run dir ');
  try {
    const st = fstatSync(fd);
    if (st.uid !== uid && st.uid !== 0) {
      throw new RunDirError(`run dir ${path} is owned by uid ${st.uid}, not the agent's uid ${uid} or root: refusing it`);
    }
    let note: string | null = null;
    if ((st.mode & SHARED_WRITE) !== 0 && (st.mode & STICKY) === 0) {
      if (st.uid === uid) {
        // Keep who may create entries; take away renaming or removing the agent's.
        fchmodSync(fd, (st.mode & 0o7777) | STICKY);
      } else {
        note = `run dir ${path} (owned by uid ${st.uid}, mode ${mode(st)}) is writable by others without the sticky bit and the agent (uid ${uid}) cannot change that: mount the volume whole only in the agent`;
      }
    }
    return { fd, note };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Check (creating it with `dirMode` if missing) DIR/NAME: a directory owned by the
 * agent's uid, not writable by group or others. Returns its fd; the caller closes it.
 */
export function openOwnDir(runDirFd: number, runDir: string, name: string, uid: number, dirMode: number, hint = ''): number {
  const path = join(runDir, name);
  let created = true;
  try {
    mkdirSync(at(runDirFd, name), { mode: dirMode });
  } catch (e) {
    if (errCode(e) !== 'EEXIST') throw new RunDirError(`cannot create ${path}: ${errCode(e)}`);
    created = false;
  }
  const fd = openDir(path, at(runDirFd, name), '');
  try {
    // The mode asked for, whatever the umask: apps of other uids must reach the sockets.
    if (created) fchmodSync(fd, dirMode);
    const st = fstatSync(fd);
    if (st.uid !== uid) throw new RunDirError(`${path} is owned by uid ${st.uid}, not the agent's uid ${uid}: refusing it${hint}`);
    if ((st.mode & SHARED_WRITE) !== 0) {
      throw new RunDirError(`${path} (owned by uid ${st.uid}) is writable by group or others (mode ${mode(st)}): refusing it`);
    }
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Take the run dir's lock (DIR/.fdstore/lock, flock held for the agent's life) so a
 * second agent on the same run dir refuses instead of taking over its sockets.
 * Writes this pid into the file. Returns the lock fd: never close it before exit.
 */
export function lockRunDir(kernel: Pick<Kernel, 'lockExclusive'>, adminFd: number, lockPath: string, name: string, pid: number): number {
  let fd: number;
  try {
    fd = openSync(at(adminFd, name), constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  } catch (e) {
    throw new RunDirError(`cannot open lock file ${lockPath}: ${errCode(e)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new RunDirError(`lock file ${lockPath} is not a regular file`);
    if (!kernel.lockExclusive(fd)) {
      const buf = Buffer.alloc(LOCK_READ_MAX);
      const n = readSync(fd, buf, 0, LOCK_READ_MAX, 0);
      const other = /^\d+/.exec(buf.subarray(0, n).toString('utf8'))?.[0] ?? 'unknown';
      throw new RunDirError(`another agent (pid ${other}) is serving this run dir (${lockPath} is locked): refusing to start a second one`);
    }
    ftruncateSync(fd, 0);
    writeSync(fd, `${pid}\n`, 0);
    return fd;
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}
