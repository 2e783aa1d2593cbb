/**
 * An fd's type (tcp_listen, memfd, ...) per store entry, computed once: telling it
 * takes an fstat and socket options (sys.fdInfo), and an open fd never changes
 * type. Keyed by the entry object, so an entry that left its store leaves the cache
 * with it (the store drops its last reference): bounded by the stores, no pruning.
 */
import type { FdType } from '../store/describe.js';
import type { Entry } from '../store/store.js';

export class FdTypeCache {
  private readonly types = new WeakMap<Entry, FdType>();

  /** tell: the type from the kernel; null when it cannot be told now (counted as other, not cached). */
  constructor(private readonly tell: (e: Entry) => FdType | null) {}

  typeOf = (e: Entry): FdType => {
    const known = this.types.get(e);
    if (known !== undefined) return known;
    const t = this.tell(e);
    if (t === null) return 'other';
    this.types.set(e, t);
    return t;
  };
}
