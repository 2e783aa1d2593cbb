/**
 * The keeper protocol's records (agent/include/keeper.h, docs/keeper.md): one
 * builder that packs records into messages of at most KEEPER_MSG_MAX bytes and
 * KEEPER_FDS_PER_MSG fds, and one parser for what the keeper sends. Pure.
 */

/** Same numbers as agent/include/keeper.h (test/keeper/peers.test.ts checks them); the socket's path is in unit/layout.ts. */
export const KEEPER_VERSION = 1;
export const KEEPER_FDS_PER_MSG = 253;
export const KEEPER_MSG_MAX = 128 * 1024;
export const KEEPER_BLOB_MAX = 64 * 1024;
export const KEEPER_META_MAX = 512;
export const KEEPER_METAS_MAX = 4096;
/** Largest --max-fds of the keeper: the limit assumed until its hello says. */
export const KEEPER_SLOTS_MAX = 1 << 20;

/** Slots of one D record: its count is a u16, and it must fit a message. */
const D_CHUNK = Math.min(0xffff, Math.floor((KEEPER_MSG_MAX - 3) / 4));

export interface Message {
  data: Buffer;
  fds: number[];
}

/** Packs records in order into as few messages as the limits allow. */
export class MessageBuilder {
  private readonly out: Message[] = [];
  private parts: Buffer[] = [];
  private bytes = 0;
  private fds: number[] = [];

  reset(): this {
    return this.record(Buffer.from('R'));
  }

  meta(id: number, bytes: Buffer): this {
    const b = Buffer.alloc(5 + bytes.length);
    b.write('M', 0, 'latin1');
    b.writeUInt16LE(id, 1);
    b.writeUInt16LE(bytes.length, 3);
    bytes.copy(b, 5);
    return this.record(b);
  }

  /** fds[i] into slots[i], all with metadata `meta`; split across messages as needed. */
  add(meta: number, slots: readonly number[], fds: readonly number[]): this {
    let i = 0;
    while (i < slots.length) {
      if (this.fds.length >= KEEPER_FDS_PER_MSG || this.bytes + 5 + 4 > KEEPER_MSG_MAX) this.next();
      const room = Math.min(KEEPER_FDS_PER_MSG - this.fds.length, Math.floor((KEEPER_MSG_MAX - this.bytes - 5) / 4), slots.length - i);
      // Every byte is written below; this is once per 253 stored fds, on the store's path.
      const b = Buffer.allocUnsafe(5 + 4 * room);
      b.write('A', 0, 'latin1');
      b.writeUInt16LE(meta, 1);
      b.writeUInt16LE(room, 3);
      for (let k = 0; k < room; k++) b.writeUInt32LE(slots[i + k]!, 5 + 4 * k);
      this.parts.push(b);
      this.bytes += b.length;
      for (let k = 0; k < room; k++) this.fds.push(fds[i + k]!);
      i += room;
    }
    return this;
  }

  remove(slots: readonly number[]): this {
    for (let i = 0; i < slots.length; i += D_CHUNK) {
      const chunk = slots.slice(i, i + D_CHUNK);
      const b = Buffer.alloc(3 + 4 * chunk.length);
      b.write('D', 0, 'latin1');
      b.writeUInt16LE(chunk.length, 1);
      chunk.forEach((s, k) => b.writeUInt32LE(s, 3 + 4 * k));
      this.record(b);
    }
    return this;
  }

  state(blob: Buffer): this {
    const b = Buffer.alloc(5 + blob.length);
    b.write('S', 0, 'latin1');
    b.writeUInt32LE(blob.length, 1);
    blob.copy(b, 5);
    return this.record(b);
  }

  query(): this {
    return this.record(Buffer.from('Q'));
  }

  /** The messages, in order; the builder is empty afterwards. */
  take(): Message[] {
    if (this.bytes > 0) this.next();
    return this.out.splice(0);
  }

  private record(b: Buffer): this {
    if (this.bytes + b.length > KEEPER_MSG_MAX) this.next();
    this.parts.push(b);
    this.bytes += b.length;
    return this;
  }

  private next(): void {
    if (this.bytes === 0) return;
    this.out.push({ data: Buffer.concat(this.parts, this.bytes), fds: this.fds });
    this.parts = [];
    this.bytes = 0;
    this.fds = [];
  }
}

export interface Hello {
  version: number;
  maxSlots: number;
  maxMetas: number;
  used: number;
  blobLen: number;
  refused: number;
}

export type KeeperRecord =
  | { op: 'H'; hello: Hello }
  | { op: 'M'; id: number; bytes: Buffer }
  | { op: 'A'; meta: number; slots: number[] }
  | { op: 'S'; blob: Buffer }
  | { op: 'E' };

/** Thrown for anything the keeper should never send. */
export class KeeperProtocolError extends Error {
  readonly code = 'EPROTO';
}

/** Records of one message from the keeper, checked against the limits. */
export function parseKeeperMessage(b: Buffer): KeeperRecord[] {
  const out: KeeperRecord[] = [];
  let off = 0;
  const need = (n: number): void => {
    if (b.length - off < n) throw new KeeperProtocolError('keeper message truncated');
  };
  while (off < b.length) {
    const op = String.fromCharCode(b[off++]!);
    switch (op) {
      case 'H':
        need(24);
        out.push({
          op: 'H',
          hello: {
            version: b.readUInt32LE(off),
            maxSlots: b.readUInt32LE(off + 4),
            maxMetas: b.readUInt32LE(off + 8),
            used: b.readUInt32LE(off + 12),
            blobLen: b.readUInt32LE(off + 16),
            refused: b.readUInt32LE(off + 20),
          },
        });
        off += 24;
        break;
      case 'M': {
        need(4);
        const id = b.readUInt16LE(off);
        const len = b.readUInt16LE(off + 2);
        off += 4;
        need(len);
        if (id >= KEEPER_METAS_MAX || len === 0 || len > KEEPER_META_MAX) throw new KeeperProtocolError('keeper meta out of range');
        out.push({ op: 'M', id, bytes: b.subarray(off, off + len) });
        off += len;
        break;
      }
      case 'A': {
        need(4);
        const meta = b.readUInt16LE(off);
        const n = b.readUInt16LE(off + 2);
        off += 4;
        need(4 * n);
        const slots: number[] = new Array(n);
        for (let k = 0; k < n; k++) slots[k] = b.readUInt32LE(off + 4 * k);
        off += 4 * n;
        out.push({ op: 'A', meta, slots });
        break;
      }
      case 'S': {
        need(4);
        const len = b.readUInt32LE(off);
        off += 4;
        need(len);
        if (len > KEEPER_BLOB_MAX) throw new KeeperProtocolError('keeper state blob too large');
        out.push({ op: 'S', blob: b.subarray(off, off + len) });
        off += len;
        break;
      }
      case 'E':
        out.push({ op: 'E' });
        break;
      default:
        throw new KeeperProtocolError(`unknown keeper record ${JSON.stringify(op)}`);
    }
  }
  return out;
}
