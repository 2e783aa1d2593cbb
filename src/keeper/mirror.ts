/**
 * The agent's picture of what the keeper holds, and the journal of changes not
 * sent yet. Slots and metadata ids are numbered here (free lists), so the keeper
 * is two arrays. Pure: messages come out of flush(), the caller sends them.
 *
 * Fd ownership: the mirror never owns an fd. An item's fd belongs to the store or
 * to the listen sockets, which call remove() before they close it; a removal of an
 * item whose add is still in the journal cancels that add, so a closed (and maybe
 * reused) fd number is never sent.
 */
import { KEEPER_METAS_MAX, MessageBuilder, type Message } from './wire.js';

interface Item {
  slot: number;
  fd: number;
  meta: number;
  /** The keeper has it (sent, or found there at start). */
  sent: boolean;
  /** Removed before it was sent: skipped by the flush (its fd may be closed and reused). */
  cancelled: boolean;
}

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
  /** Keys: a store entry's id (number) or a listen socket's BoundListener object. */
  private readonly items = new Map<unknown, Item>();
  private readonly metas = new Map<string, MetaSlot>();
  private readonly metaText = new Map<number, string>();
  private freeSlots: number[] = [];
  private nextSlot = 0;
  private freeMetas: number[] = [];
  private nextMeta = 0;
  /** Adds not sent yet, in order (cancelled ones are skipped: no Map on the per-fd path). */
  private pendingAdds: Item[] = [];
  private pendingDeletes: number[] = [];
  private resetPending = false;
  private blob: string | null = null;
  private blobSent: string | null = null;
  /** Items that found no slot (keeper full). */
  unmirrored = 0;

  constructor(private maxSlots: number) {}

  get size(): number {
    return this.items.size;
  }

  has(key: unknown): boolean {
    return this.items.has(key);
  }

  /** True when flush() would produce a message. */
  get dirty(): boolean {
    return this.resetPending || this.pendingAdds.length > 0 || this.pendingDeletes.length > 0 || this.blob !== this.blobSent;
  }

  /** A new fd to mirror. Throws MirrorFullError when every slot is taken. */
  add(key: unknown, fd: number, meta: string): void {
    this.addMany([key], [fd], meta);
  }

  /**
   * Several fds with one metadata (one FDSTORE=1 message): one metadata lookup for
   * all. Throws MirrorFullError when the slots run out; those before it are added.
   */
  addMany(keys: readonly unknown[], fds: readonly number[], meta: string): void {
    const id = this.refMeta(meta, keys.length);
    for (let i = 0; i < keys.length; i++) {
      const key = keys[i];
      if (this.items.has(key)) this.remove(key);
      let slot: number;
      try {
        slot = this.takeSlot();
      } catch (e) {
        for (let k = i; k < keys.length; k++) this.unrefMeta(id);
        throw e;
      }
      const item: Item = { slot, fd: fds[i]!, meta: id, sent: false, cancelled: false };
      this.items.set(key, item);
      this.pendingAdds.push(item);
    }
  }

  /** Before the fd is closed. Unknown keys are ignored. */
  remove(key: unknown): void {
    const item = this.items.get(key);
    if (!item) return;
    this.items.delete(key);
    if (item.sent) this.pendingDeletes.push(item.slot);
    else item.cancelled = true;
    this.freeSlots.push(item.slot);
    this.unrefMeta(item.meta);
  }

  /** The state blob as it is now; sent with the next flush when it changed. */
  setState(blob: string): void {
    this.blob = blob;
  }

  /** At start: the keeper holds fd in slot with metadata id `meta` (text `metaText`), now owned under key. */
  adopt(key: unknown, slot: number, fd: number, meta: number, metaText: string): void {
    let m = this.metas.get(metaText);
    if (!m) {
      m = { id: meta, refs: 0, sent: true };
      this.metas.set(metaText, m);
      this.metaText.set(meta, metaText);
    }
    m.refs++;
    this.items.set(key, { slot, fd, meta: m.id, sent: true, cancelled: false });
    this.nextSlot = Math.max(this.nextSlot, slot + 1);
    this.nextMeta = Math.max(this.nextMeta, m.id + 1);
  }

  /**
   * After adoption: slots below the highest adopted one that nothing holds are
   * free; slots the keeper holds that were not adopted are closed there; ids of
   * metadata the keeper had but nothing uses are free.
   */
  adopted(keeperSlots: readonly number[], keeperMetas: readonly number[]): void {
    const used = new Set<number>();
    for (const it of this.items.values()) used.add(it.slot);
    for (const s of keeperSlots) {
      if (!used.has(s)) {
        this.pendingDeletes.push(s);
        this.nextSlot = Math.max(this.nextSlot, s + 1);
      }
    }
    for (const id of keeperMetas) this.nextMeta = Math.max(this.nextMeta, id + 1);
    for (let s = 0; s < this.nextSlot; s++) if (!used.has(s)) this.freeSlots.push(s);
    const liveMetas = new Set([...this.metas.values()].map((m) => m.id));
    for (let id = 0; id < this.nextMeta; id++) if (!liveMetas.has(id)) this.freeMetas.push(id);
    this.blobSent = null;
  }

  /** A new keeper (or a connection that lost messages): everything is sent again after an 'R'. */
  resync(maxSlots: number): void {
    this.maxSlots = maxSlots;
    this.resetPending = true;
    this.pendingDeletes = [];
    this.pendingAdds = [];
    for (const it of this.items.values()) {
      it.sent = false;
      this.pendingAdds.push(it);
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
    // Grouped by metadata: one 'A' record per (container, name, poll) of the turn.
    // Plain arrays, one pass: this runs once per 253 fds on the store's hot path.
    const slots = new Map<number, number[]>();
    const fds = new Map<number, number[]>();
    for (const it of this.pendingAdds) {
      if (it.cancelled) continue;
      let s = slots.get(it.meta);
      let f = fds.get(it.meta);
      if (s === undefined || f === undefined) {
        slots.set(it.meta, (s = []));
        fds.set(it.meta, (f = []));
      }
      s.push(it.slot);
      f.push(it.fd);
      it.sent = true;
    }
    this.pendingAdds = [];
    for (const [id, group] of slots) {
      const text = this.metaText.get(id)!;
      const m = this.metas.get(text)!;
      if (!m.sent) {
        b.meta(id, Buffer.from(text, 'utf8'));
        m.sent = true;
      }
      b.add(id, group, fds.get(id)!);
    }
    return b.take();
  }

  private takeSlot(): number {
    const s = this.freeSlots.pop();
    if (s !== undefined) return s;
    if (this.nextSlot >= this.maxSlots) throw new MirrorFullError(`the keeper holds at most ${this.maxSlots} fds`);
    return this.nextSlot++;
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
