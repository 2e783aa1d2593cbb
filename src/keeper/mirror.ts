/**
 * The agent's picture of what the keeper holds, and the journal of changes not
 * sent yet. Slots and metadata ids are numbered here (free lists), so the keeper
 * is two arrays. Pure: messages come out of flush(), the caller sends them.
 *
 * Fd ownership: the mirror never owns an fd. An item's fd belongs to the store or
 * to the listen sockets, which call remove() before they close it; a removal of an
 * item whose add is still in the journal cancels that add, so a closed (and maybe
 * reused) fd number is never sent.
 *
 * Items are keyed by their fd number: a number names one open file of the agent at
 * a time, and its owner removes it here before closing it (a number added again
 * without that replaces the old item).
 *
 * Layout: this is on the store's hot path (one add per stored fd, issue 11's cost
 * aim), so a slot's fd, metadata and state live in typed arrays indexed by slot,
 * the slot of an fd in one indexed by fd, and the journal is a list of slot
 * numbers: no object and no Map entry per fd, nothing for the collector to trace.
 * The arrays grow by doubling (the slot ones up to the keeper's size).
 */
import { KEEPER_METAS_MAX, MessageBuilder, type Message } from './wire.js';

/** A slot's state. */
const FREE = 0;
/** Added, not sent yet: its number is in pendingAdds (maybe twice, see flush). */
const PENDING = 1;
/** The keeper has it (sent, or found there at start). */
const SENT = 2;

const INITIAL_SLOTS = 1024;

interface MetaSlot {
  id: number;
  refs: number;
  sent: boolean;
}

/** The keeper cannot hold more: the item is not mirrored (counted, logged by the caller). */
export class MirrorFullError extends Error {
  readonly code = 'ENOSPC';
}

export class Mirror {
  /** Slot of each mirrored fd number, -1 for none. */
  private slotOfFd = new Int32Array(INITIAL_SLOTS).fill(-1);
  private items = 0;
  private fdOf = new Int32Array(INITIAL_SLOTS);
  private metaOf = new Int32Array(INITIAL_SLOTS);
  private stateOf = new Uint8Array(INITIAL_SLOTS);
  private readonly metas = new Map<string, MetaSlot>();
  private readonly metaText = new Map<number, string>();
  private freeSlots: number[] = [];
  private nextSlot = 0;
  private freeMetas: number[] = [];
  private nextMeta = 0;
  /**
   * Slots added since the last flush, in order. A slot removed before the flush
   * is FREE (skipped); if it was taken again it is listed twice and PENDING with
   * its newest fd, which the first occurrence sends and the second skips.
   */
  private pendingAdds: number[] = [];
  private pendingDeletes: number[] = [];
  private resetPending = false;
  private blob: string | null = null;
  private blobSent: string | null = null;
  /** Items that found no slot (keeper full). */
  unmirrored = 0;

  constructor(private maxSlots: number) {}

  get size(): number {
    return this.items;
  }

  has(fd: number): boolean {
    return fd >= 0 && fd < this.slotOfFd.length && this.slotOfFd[fd]! >= 0;
  }

  /** True when flush() would produce a message. */
  get dirty(): boolean {
    return this.resetPending || this.pendingAdds.length > 0 || this.pendingDeletes.length > 0 || this.blob !== this.blobSent;
  }

  /** A new fd to mirror. Throws MirrorFullError when every slot is taken. */
  add(fd: number, meta: string): void {
    this.addMany([fd], meta);
  }

  /**
   * Several fds with one metadata (one FDSTORE=1 message): one metadata lookup for
   * all. Throws MirrorFullError when the slots run out; those before it are added.
   */
  addMany(fds: readonly number[], meta: string): void {
    const id = this.refMeta(meta, fds.length);
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i]!;
      if (fd >= this.slotOfFd.length) this.slotOfFd = grown(this.slotOfFd, fd, (n) => new Int32Array(n).fill(-1));
      if (this.slotOfFd[fd]! >= 0) this.remove(fd);
      let slot = this.freeSlots.pop();
      if (slot === undefined) {
        if (this.nextSlot >= this.maxSlots) {
          for (let k = i; k < fds.length; k++) this.unrefMeta(id);
          throw new MirrorFullError(`the keeper holds at most ${this.maxSlots} fds`);
        }
        slot = this.nextSlot++;
        this.room(slot);
      }
      this.fdOf[slot] = fd;
      this.metaOf[slot] = id;
      this.stateOf[slot] = PENDING;
      this.slotOfFd[fd] = slot;
      this.items++;
      this.pendingAdds.push(slot);
    }
  }

  /** Before the fd is closed. Fds not mirrored are ignored. */
  remove(fd: number): void {
    if (!this.has(fd)) return;
    const slot = this.slotOfFd[fd]!;
    this.slotOfFd[fd] = -1;
    this.items--;
    if (this.stateOf[slot] === SENT) this.pendingDeletes.push(slot);
    this.stateOf[slot] = FREE;
    this.fdOf[slot] = -1;
    this.freeSlots.push(slot);
    this.unrefMeta(this.metaOf[slot]!);
  }

  /** The state blob as it is now; sent with the next flush when it changed. */
  setState(blob: string): void {
    this.blob = blob;
  }

  /** At start: the keeper holds fd in slot with metadata id `meta` (text `metaText`), now the agent's too. */
  adopt(slot: number, fd: number, meta: number, metaText: string): void {
    let m = this.metas.get(metaText);
    if (!m) {
      m = { id: meta, refs: 0, sent: true };
      this.metas.set(metaText, m);
      this.metaText.set(meta, metaText);
    }
    m.refs++;
    this.room(slot);
    if (fd >= this.slotOfFd.length) this.slotOfFd = grown(this.slotOfFd, fd, (n) => new Int32Array(n).fill(-1));
    this.fdOf[slot] = fd;
    this.metaOf[slot] = m.id;
    this.stateOf[slot] = SENT;
    this.slotOfFd[fd] = slot;
    this.items++;
    this.nextSlot = Math.max(this.nextSlot, slot + 1);
    this.nextMeta = Math.max(this.nextMeta, m.id + 1);
  }

  /**
   * After adoption: slots below the highest adopted one that nothing holds are
   * free; slots the keeper holds that were not adopted are closed there; ids of
   * metadata the keeper had but nothing uses are free.
   */
  adopted(keeperSlots: readonly number[], keeperMetas: readonly number[]): void {
    for (const s of keeperSlots) {
      if (s < this.stateOf.length && this.stateOf[s] !== FREE) continue;
      this.pendingDeletes.push(s);
      this.nextSlot = Math.max(this.nextSlot, s + 1);
    }
    this.room(this.nextSlot - 1);
    for (const id of keeperMetas) this.nextMeta = Math.max(this.nextMeta, id + 1);
    for (let s = 0; s < this.nextSlot; s++) if (this.stateOf[s] === FREE) this.freeSlots.push(s);
    const liveMetas = new Set([...this.metas.values()].map((m) => m.id));
    for (let id = 0; id < this.nextMeta; id++) if (!liveMetas.has(id)) this.freeMetas.push(id);
    this.blobSent = null;
  }

  /**
   * A new keeper (or a connection that lost messages): everything is sent again
   * after an 'R'. The keeper is empty then, so the slots are numbered afresh from 0:
   * a keeper with room for fewer fds than before (a smaller --max-fds) takes the
   * first ones, and the rest are counted as unmirrored, not retried forever.
   */
  resync(maxSlots: number): void {
    const fds: number[] = [];
    const metas: number[] = [];
    for (let slot = 0; slot < this.nextSlot; slot++) {
      if (this.stateOf[slot] === FREE) continue;
      fds.push(this.fdOf[slot]!);
      metas.push(this.metaOf[slot]!);
    }
    this.maxSlots = maxSlots;
    this.resetPending = true;
    this.pendingDeletes = [];
    this.pendingAdds = [];
    this.freeSlots = [];
    this.stateOf.fill(FREE);
    this.nextSlot = 0;
    for (let i = 0; i < fds.length; i++) {
      const fd = fds[i]!;
      if (i >= maxSlots) {
        this.slotOfFd[fd] = -1;
        this.items--;
        this.unrefMeta(metas[i]!);
        this.unmirrored++;
        continue;
      }
      const slot = this.nextSlot++;
      this.fdOf[slot] = fd;
      this.metaOf[slot] = metas[i]!;
      this.stateOf[slot] = PENDING;
      this.slotOfFd[fd] = slot;
      this.pendingAdds.push(slot);
    }
    for (const m of this.metas.values()) m.sent = false;
    this.blobSent = null;
  }

  /** The journal as messages (deletes before adds, so a reused slot is closed first); empties it. */
  flush(): Message[] {
    if (!this.dirty) return [];
    const b = new MessageBuilder();
    if (this.resetPending) b.reset();
    this.resetPending = false;
    if (this.pendingDeletes.length > 0) b.remove(this.pendingDeletes);
    this.pendingDeletes = [];
    if (this.blob !== null && this.blob !== this.blobSent) b.state(Buffer.from(this.blob, 'utf8'));
    this.blobSent = this.blob;
    // Runs of the same metadata become one 'A' record each (one FDSTORE=1 message is
    // one run); a metadata's 'M' goes before its first 'A'.
    let runMeta = -1;
    let slots: number[] = [];
    let fds: number[] = [];
    const emit = (): void => {
      if (slots.length === 0) return;
      const text = this.metaText.get(runMeta)!;
      const m = this.metas.get(text)!;
      if (!m.sent) {
        b.meta(runMeta, Buffer.from(text, 'utf8'));
        m.sent = true;
      }
      b.add(runMeta, slots, fds);
      slots = [];
      fds = [];
    };
    for (const slot of this.pendingAdds) {
      if (this.stateOf[slot] !== PENDING) continue;
      const meta = this.metaOf[slot]!;
      if (meta !== runMeta) {
        emit();
        runMeta = meta;
      }
      slots.push(slot);
      fds.push(this.fdOf[slot]!);
      this.stateOf[slot] = SENT;
    }
    emit();
    this.pendingAdds = [];
    return b.take();
  }

  /** The slot arrays hold `slot`. */
  private room(slot: number): void {
    if (slot < this.stateOf.length) return;
    this.fdOf = grown(this.fdOf, slot, (n) => new Int32Array(n));
    this.metaOf = grown(this.metaOf, slot, (n) => new Int32Array(n));
    this.stateOf = grown(this.stateOf, slot, (n) => new Uint8Array(n));
  }

  private refMeta(text: string, n = 1): number {
    let m = this.metas.get(text);
    if (!m) {
      const id = this.freeMetas.pop() ?? (this.nextMeta < KEEPER_METAS_MAX ? this.nextMeta++ : -1);
      if (id < 0) throw new MirrorFullError(`more than ${KEEPER_METAS_MAX} distinct fd names in use`);
      m = { id, refs: 0, sent: false };
      this.metas.set(text, m);
      this.metaText.set(id, text);
    }
    m.refs += n;
    return m.id;
  }

  private unrefMeta(id: number): void {
    const text = this.metaText.get(id);
    if (text === undefined) return;
    const m = this.metas.get(text)!;
    if (--m.refs > 0) return;
    this.metas.delete(text);
    this.metaText.delete(id);
    this.freeMetas.push(id);
  }
}

/** A copy of `a`, doubled until index `i` fits; the new part as `make` fills it. */
function grown<T extends Int32Array | Uint8Array>(a: T, i: number, make: (n: number) => T): T {
  let n = a.length;
  while (n <= i) n *= 2;
  const b = make(n);
  b.set(a);
  return b;
}
