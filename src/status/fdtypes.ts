/**
 * An fd's type (tcp_listen, memfd, ...) per store entry, computed once: telling a
 * socket or a regular file apart takes sys.fdInfo (fstat, socket options, a
 * readlink: ~65 µs per fd measured here), and an open fd never changes type. Keyed
 * by the entry object, so an entry that left its store leaves the cache with it (the
 * store drops its last reference): bounded by the stores, no pruning. Shared by
 * /status and /metrics, so each fd is looked at once.
 */
import type { FdType } from '../store/describe.js';
import type { Entry } from '../store/store.js';

/**
 * New entries typed per turn of the event loop by warm(): 4096 fresh fds would
 * otherwise hold the agent's only thread for ~0.3 s, notify datagrams, restores and
 * probes included; 256 is ~17 ms.
 */
export const FD_TYPES_PER_TURN = 256;

export interface TypedStore {
  list(): readonly Entry[];
  get(id: number): Entry | undefined;
}

export class FdTypeCache {
  private readonly types = new WeakMap<Entry, FdType>();

  constructor(
    /** The type from the kernel; null when it cannot be told now (not cached). */
    private readonly tell: (e: Entry) => FdType | null,
    /** Lets the event loop run between chunks (setImmediate). */
    private readonly yieldTurn: () => Promise<void>,
  ) {}

  /** The cached type, or told now; null (and not cached) when it cannot be told. */
  lookup = (e: Entry): FdType | null => {
    const known = this.types.get(e);
    if (known !== undefined) return known;
    const t = this.tell(e);
    if (t !== null) this.types.set(e, t);
    return t;
  };

  /** As lookup, counting what cannot be told as other (fdstore_stored_fds does the same). */
  typeOf = (e: Entry): FdType => this.lookup(e) ?? 'other';

  /**
   * Type every entry of the stores not cached yet, FD_TYPES_PER_TURN per turn,
   * before a synchronous build that then finds them all cached. An entry that left
   * its store meanwhile is skipped: its fd number may already be another file's.
   */
  async warm(stores: Iterable<TypedStore>, perTurn = FD_TYPES_PER_TURN): Promise<void> {
    let n = 0;
    for (const s of stores) {
      for (const e of s.list()) {
        if (this.types.has(e) || s.get(e.id) !== e) continue;
        this.lookup(e);
        if (++n % perTurn === 0) await this.yieldTurn();
      }
    }
  }
}
