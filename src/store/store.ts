/**
 * One container's fd store, per F3.5-F3.25. Pure bookkeeping: the kernel work
 * (duplicate test, epoll registration, close) is injected as StoreOps, so the
 * rules can be tested on their own and the agent passes the real addon.
 *
 * Cost: add, remove and hang-up are O(1) amortised per fd. Entries are indexed by
 * store id (never reused: epoll keys) and bucketed by (st_dev, st_ino), so the
 * exact same-file test only runs against fds of the same inode. systemd compares
 * each new fd with every stored one (quadratic); a bucket holds one entry unless
 * the same inode is stored several times.
 */

export interface FdStat {
  dev: number;
  ino: number;
  mode: number;
  /** F_GETFL, O_LARGEFILE masked. */
  flags: number;
}

export interface StoreOps {
  /** Same open file description? Throws if the kernel refuses every method. */
  sameFile(a: number, b: number): boolean;
  /** Register for EPOLLHUP/EPOLLERR with this key: 0, or a negative errno (-EPERM: not pollable). */
  pollAdd(fd: number, key: number): number;
  pollDel(fd: number): void;
  close(fd: number): void;
  /** Store ids, shared by every store of the agent (they key one epoll set). */
  nextId(): number;
}

export interface Entry extends FdStat {
  readonly id: number;
  readonly fd: number;
  readonly name: string;
  /** Registered with epoll (F3.16); false for FDPOLL=0 and for fds epoll refuses. */
  readonly poll: boolean;
}

/** Why the store closed an fd (a metric label: keep it closed). */
export type DropReason =
  | 'over_limit'
  | 'duplicate'
  | 'not_stored'
  | 'unauthorized'
  | 'invalid_message'
  | 'hangup'
  | 'removed'
  | 'released'
  | 'error';

export const DROP_REASONS: readonly DropReason[] = [
  'over_limit',
  'duplicate',
  'not_stored',
  'unauthorized',
  'invalid_message',
  'hangup',
  'removed',
  'released',
  'error',
];

export interface AddResult {
  stored: number;
  /** Closed, by reason; only reasons that occurred. */
  dropped: Partial<Record<DropReason, number>>;
  /** The first error that stopped the add (F3.8), if any. */
  error?: string;
}

const EPERM = 1;

export class FdStore {
  private readonly entries = new Map<number, Entry>();
  private readonly byInode = new Map<string, Entry[]>();
  /** In-flight restores still sending fds by number: closes wait until they finish. */
  private pins = 0;
  private deferredCloses: number[] = [];

  constructor(
    readonly container: string,
    private maxFds: number,
    private readonly ops: StoreOps,
  ) {}

  get max(): number {
    return this.maxFds;
  }

  get size(): number {
    return this.entries.size;
  }

  /** Entries in insertion order (F3.28 leaves order open; oldest first is stable for users). */
  list(): Entry[] {
    return [...this.entries.values()];
  }

  get(id: number): Entry | undefined {
    return this.entries.get(id);
  }

  /**
   * Store fds from one FDSTORE=1 message (F3.8). Takes ownership of every fd:
   * each is either stored or closed before this returns.
   */
  add(fds: readonly number[], stats: readonly FdStat[], name: string, poll: boolean): AddResult {
    const result: AddResult = { stored: 0, dropped: {} };
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i]!;
      const stat = stats[i]!;
      // F3.8 (2) and F3.11: the limit is checked before the duplicate test.
      if (this.entries.size >= this.maxFds) {
        this.closeRest(fds, i, 'over_limit', result);
        return result;
      }
      let failure: string | null = null;
      try {
        if (stat.mode === 0) failure = 'fstat failed';
        else if (this.findSame(fd, stat)) {
          this.ops.close(fd);
          bump(result, 'duplicate');
          continue;
        }
      } catch (e) {
        failure = `duplicate check failed: ${(e as Error).message}`;
      }
      if (failure === null) {
        failure = this.insert(fd, stat, name, poll);
        if (failure === null) {
          result.stored++;
          continue;
        }
      }
      // F3.8: any other error stops the add and closes this fd and the rest.
      result.error = failure;
      this.closeRest(fds, i, 'error', result);
      return result;
    }
    return result;
  }

  /** FDSTOREREMOVE=1 (F3.19): close every entry with exactly this name. */
  removeByName(name: string): number {
    let n = 0;
    for (const e of this.entries.values()) {
      if (e.name === name) {
        this.drop(e);
        n++;
      }
    }
    return n;
  }

  /** EPOLLHUP/EPOLLERR on a stored fd (F3.17). False when the id is no longer here. */
  hangup(id: number): boolean {
    const e = this.entries.get(id);
    if (!e) return false;
    this.drop(e);
    return true;
  }

  /** Release everything (clean, preserve policy, shutdown). Returns how many were closed. */
  clear(): number {
    const n = this.entries.size;
    for (const e of [...this.entries.values()]) this.drop(e);
    return n;
  }

  /**
   * While pinned, entries still leave the store at once (hang-up, remove, clean) but
   * their fds stay open, so a restore sending a snapshot never sends a closed or
   * reused fd number. Returns the unpin function.
   */
  pin(): () => void {
    this.pins++;
    let done = false;
    return () => {
      if (done) return;
      done = true;
      if (--this.pins > 0) return;
      const fds = this.deferredCloses;
      this.deferredCloses = [];
      for (const fd of fds) this.ops.close(fd);
    };
  }

  /** A lower max applies to later adds only; stored fds are never dropped for it. */
  setMax(max: number): void {
    this.maxFds = max;
  }

  private findSame(fd: number, stat: FdStat): boolean {
    const bucket = this.byInode.get(inodeKey(stat));
    if (!bucket) return false;
    for (const e of bucket) if (this.ops.sameFile(e.fd, fd)) return true;
    return false;
  }

  private insert(fd: number, stat: FdStat, name: string, poll: boolean): string | null {
    const id = this.ops.nextId();
    let polled = false;
    if (poll) {
      const rc = this.ops.pollAdd(fd, id);
      // F3.16: regular files, memfds and directories cannot be polled: stored unpolled.
      if (rc === 0) polled = true;
      else if (rc !== -EPERM) return `epoll registration failed (errno ${-rc})`;
    }
    const entry: Entry = { id, fd, name, poll: polled, ...pickStat(stat) };
    this.entries.set(id, entry);
    const key = inodeKey(stat);
    const bucket = this.byInode.get(key);
    if (bucket) bucket.push(entry);
    else this.byInode.set(key, [entry]);
    return null;
  }

  private drop(e: Entry): void {
    this.entries.delete(e.id);
    const key = inodeKey(e);
    const bucket = this.byInode.get(key);
    if (bucket) {
      const i = bucket.indexOf(e);
      if (i >= 0) bucket.splice(i, 1);
      if (bucket.length === 0) this.byInode.delete(key);
    }
    // Out of the epoll set before close: the sender still holds the same open file,
    // so a registration left behind would keep firing for it.
    if (e.poll) this.ops.pollDel(e.fd);
    if (this.pins > 0) this.deferredCloses.push(e.fd);
    else this.ops.close(e.fd);
  }

  private closeRest(fds: readonly number[], from: number, reason: DropReason, r: AddResult): void {
    for (let j = from; j < fds.length; j++) {
      this.ops.close(fds[j]!);
      bump(r, reason);
    }
  }
}

function inodeKey(s: FdStat): string {
  return `${s.dev}:${s.ino}`;
}

function pickStat(s: FdStat): FdStat {
  return { dev: s.dev, ino: s.ino, mode: s.mode, flags: s.flags };
}

function bump(r: AddResult, reason: DropReason): void {
  r.dropped[reason] = (r.dropped[reason] ?? 0) + 1;
}
