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
  /** pollAdd for a whole message at once (one native call): 0 / -errno per fd. */
  pollAddMany?(fds: number[], keys: number[]): ArrayLike<number>;
  pollDel(fd: number): void;
  close(fd: number): void;
  /** Store ids, shared by every store of the agent (they key one epoll set). */
  nextId(): number;
  /** Entries of one message are in the store for good (after their epoll registration): the keeper mirrors them. */
  added?(entries: readonly Entry[]): void;
  /** An entry leaves the store, before its fd is closed. */
  removed?(e: Entry): void;
}

export interface Entry extends FdStat {
  readonly id: number;
  readonly fd: number;
  readonly name: string;
  /** Registered with epoll (F3.16); false for FDPOLL=0 and for fds epoll refuses. */
  readonly poll: boolean;
}

type MutableEntry = { -readonly [K in keyof Entry]: Entry[K] };

/** Why the store closed an fd (a metric label: keep it closed). */
export type DropReason =
  | 'over_limit'
  | 'max_lowered'
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
  'max_lowered',
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
/** pollAll's answer for fds after a failed registration: never registered, dropped. */
const NOT_ATTEMPTED = -1_000_000;

export class FdStore {
  private readonly entries = new Map<number, MutableEntry>();
  /** st_dev -> st_ino -> entries of that inode (one, or several for the same file). */
  private readonly byInode = new Map<number, Map<number, MutableEntry | MutableEntry[]>>();
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

  /** Fds removed while pinned, still open until the last unpin. */
  get deferred(): number {
    return this.deferredCloses.length;
  }

  /**
   * Fds this store keeps open: entries plus deferred closes. The limit applies
   * to this, so a loop of FDSTORE=1/FDSTOREREMOVE=1 during a long restore cannot
   * grow the deferred list past max.
   */
  get held(): number {
    return this.entries.size + this.deferredCloses.length;
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
    const fresh: MutableEntry[] = [];
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i]!;
      const stat = stats[i]!;
      // F3.8 (2) and F3.11: the limit is checked before the duplicate test.
      // Closes deferred by a restore in flight count: those fds are still open.
      if (this.held >= this.maxFds) {
        this.closeRest(fds, i, 'over_limit', result);
        break;
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
      if (failure !== null) {
        // F3.8: any other error stops the add and closes this fd and the rest.
        result.error = failure;
        this.closeRest(fds, i, 'error', result);
        break;
      }
      fresh.push(this.insert(fd, stat, name));
    }
    // Registered after the loop, all at once: entries of this message are already
    // in the buckets, so duplicates within the message were found (F3.12).
    const failed = poll && fresh.length > 0 ? this.register(fresh, result) : 0;
    result.stored = fresh.length - failed;
    if (this.ops.added && result.stored > 0) this.ops.added(failed === 0 ? fresh : fresh.filter((e) => this.entries.get(e.id) === e));
    return result;
  }

  /**
   * An fd a restarted agent takes back from the keeper (docs/keeper.md), with the
   * name and poll flag it was stored with. The same rules as add() for one fd: the
   * limit (a lowered max), duplicates, epoll registration; refused, it is closed and
   * null returned. ops.added is not called: the keeper has it already.
   */
  adopt(fd: number, stat: FdStat, name: string, poll: boolean): Entry | null {
    let refused = this.held >= this.maxFds || stat.mode === 0;
    try {
      refused ||= this.findSame(fd, stat);
    } catch {
      refused = true;
    }
    if (refused) {
      this.ops.close(fd);
      return null;
    }
    const e = this.insert(fd, stat, name);
    if (poll) {
      const rc = this.ops.pollAdd(fd, e.id);
      if (rc === 0) e.poll = true;
      else if (rc !== -EPERM) {
        this.drop(e);
        return null;
      }
    }
    return e;
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
   * reused fd number. They count against max until closed (see held). Returns
   * the unpin function (idempotent); the last unpin closes them.
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

  /** Log fields of an over_limit drop: the limit, and the deferred closes that count against it. */
  limitFields(): { max: number; deferredCloses?: number } {
    const n = this.deferredCloses.length;
    return n > 0 ? { max: this.maxFds, deferredCloses: n } : { max: this.maxFds };
  }

  /**
   * A new FileDescriptorStoreMax (a config reload). Raised: later adds may use it.
   * Lowered below the entries held: the excess is closed now, newest first (F3.24;
   * systemd drops from the head of its newest-first list), so the fds an app
   * stored first (typically its listening sockets) stay. Returns how many were
   * closed. During a restore they leave the store at once and their closes wait
   * for the unpin, as every close does; until then they count against the new max.
   */
  setMax(max: number): number {
    this.maxFds = max;
    const excess = this.entries.size - max;
    if (excess <= 0) return 0;
    const newest = [...this.entries.values()].slice(-excess).reverse();
    for (const e of newest) this.drop(e);
    return excess;
  }

  private findSame(fd: number, stat: FdStat): boolean {
    const slot = this.byInode.get(stat.dev)?.get(stat.ino);
    if (slot === undefined) return false;
    if (!Array.isArray(slot)) return this.ops.sameFile(slot.fd, fd);
    for (const e of slot) if (this.ops.sameFile(e.fd, fd)) return true;
    return false;
  }

  private insert(fd: number, stat: FdStat, name: string): MutableEntry {
    const entry: MutableEntry = { id: this.ops.nextId(), fd, name, poll: false, dev: stat.dev, ino: stat.ino, mode: stat.mode, flags: stat.flags };
    this.entries.set(entry.id, entry);
    let inodes = this.byInode.get(stat.dev);
    if (!inodes) this.byInode.set(stat.dev, (inodes = new Map()));
    const slot = inodes.get(stat.ino);
    if (slot === undefined) inodes.set(stat.ino, entry);
    else if (Array.isArray(slot)) slot.push(entry);
    else inodes.set(stat.ino, [slot, entry]);
    return entry;
  }

  /**
   * F3.16: register the message's new entries with epoll. EPERM (regular files,
   * memfds) leaves an entry unpolled; any other error stops the add (F3.8): that
   * entry and every later one of the message leave the store again, closed.
   * Returns how many left.
   */
  private register(fresh: MutableEntry[], result: AddResult): number {
    const rcs = this.pollAll(fresh);
    let failAt = -1;
    for (let k = 0; k < fresh.length; k++) {
      const rc = rcs[k]!;
      if (rc === 0) fresh[k]!.poll = true;
      else if (rc !== -EPERM && failAt < 0) {
        failAt = k;
        result.error = `epoll registration failed (errno ${-rc})`;
      }
    }
    if (failAt < 0) return 0;
    for (let k = failAt; k < fresh.length; k++) {
      this.drop(fresh[k]!);
      bump(result, 'error');
    }
    return fresh.length - failAt;
  }

  private pollAll(fresh: MutableEntry[]): ArrayLike<number> {
    if (this.ops.pollAddMany) return this.ops.pollAddMany(fresh.map((e) => e.fd), fresh.map((e) => e.id));
    const rcs: number[] = [];
    for (const e of fresh) {
      const rc = this.ops.pollAdd(e.fd, e.id);
      rcs.push(rc);
      if (rc !== 0 && rc !== -EPERM) break; // stop at the first real failure, as F3.8 does
    }
    while (rcs.length < fresh.length) rcs.push(NOT_ATTEMPTED);
    return rcs;
  }

  private drop(e: MutableEntry): void {
    this.ops.removed?.(e);
    this.entries.delete(e.id);
    const inodes = this.byInode.get(e.dev);
    const slot = inodes?.get(e.ino);
    if (inodes && slot !== undefined) {
      if (slot === e) inodes.delete(e.ino);
      else if (Array.isArray(slot)) {
        const i = slot.indexOf(e);
        if (i >= 0) slot.splice(i, 1);
        if (slot.length === 1) inodes.set(e.ino, slot[0]!);
      }
      if (inodes.size === 0) this.byInode.delete(e.dev);
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

function bump(r: AddResult, reason: DropReason): void {
  r.dropped[reason] = (r.dropped[reason] ?? 0) + 1;
}
