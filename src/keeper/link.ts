/**
 * The agent's connection to the keeper: at start a synchronous hello and dump
 * (before anything is bound, so listen sockets are adopted, not bound again);
 * afterwards one flush per event-loop turn that changed something, and a
 * reconnect with a full re-seed when the keeper went away (docs/keeper.md).
 *
 * Fd ownership: the dump's fds are the caller's (KeeperDump); fds the keeper
 * sends at any other time are closed at once. The connection's fd is this object's.
 */
import type { Kernel, PollHandle } from '../native/kernel.js';
import type { Logger } from '../log/log.js';
import type { FdStat } from '../store/store.js';
import type { NotifyDatagram } from '../native/binding.js';
import { Mirror, MirrorFullError } from './mirror.js';
import { KEEPER_FDS_PER_MSG, KEEPER_MSG_MAX, KEEPER_VERSION, KeeperProtocolError, parseKeeperMessage, MessageBuilder, type Hello } from './wire.js';

/** How long the keeper may take for each message of the hello and the dump. */
export const KEEPER_REPLY_TIMEOUT_MS = 2000;
/** The whole dump: 19,000 fds arrive in well under a second. */
export const KEEPER_DUMP_TIMEOUT_MS = 20_000;
/** One blocking send to a keeper that does not read, before the link is dropped. */
export const KEEPER_SEND_TIMEOUT_MS = 1000;
/** Reconnect period after the keeper went away. */
export const KEEPER_RETRY_MS = 500;

export interface DumpedFd {
  slot: number;
  meta: number;
  fd: number;
  stat: FdStat;
}

export interface KeeperDump {
  hello: Hello;
  metas: Map<number, string>;
  fds: DumpedFd[];
  blob: string | null;
}

export interface KeeperLinkDeps {
  kernel: Kernel;
  log: Logger;
  path: string;
  /** The only uid the keeper may run as (the agent's). */
  uid: number;
  /** The state blob as it is now (called at each flush). */
  state(): string;
  timers: { set(fn: () => void, ms: number): unknown; clear(t: unknown): void };
  /** The link went down or came up again (status watchers are woken). */
  changed?(): void;
}

export class KeeperLink {
  private fd = -1;
  private handle: PollHandle | null = null;
  private scheduled = false;
  private retry: unknown = null;
  private closed = false;
  /** Times the link was lost and seeded again (a keeper restart). */
  reseeds = 0;
  /** Set once hello arrived: the keeper's limit. */
  maxSlots = 0;

  constructor(
    private readonly d: KeeperLinkDeps,
    public mirror: Mirror,
  ) {}

  get connected(): boolean {
    return this.fd >= 0;
  }

  /**
   * At agent start. Connects and reads the hello; when the keeper holds anything,
   * asks for the dump and returns it (fds the caller's). null when there is no
   * keeper to talk to (the agent starts as without one, and retries in the background)
   * or it holds nothing.
   */
  openAtStart(): { dump: KeeperDump | null; hello: Hello | null } {
    let hello: Hello | null;
    try {
      hello = this.connect();
    } catch (e) {
      this.d.log.warning('keeper not reachable: starting without its state, retrying', { path: this.d.path, error: (e as Error).message });
      this.dropped();
      return { dump: null, hello: null };
    }
    if (hello.used === 0 && hello.blobLen === 0) return { dump: null, hello };
    try {
      return { dump: this.dump(hello), hello };
    } catch (e) {
      this.d.log.error('keeper dump failed: its state is not adopted', { path: this.d.path, error: (e as Error).message });
      this.disconnect();
      this.dropped();
      return { dump: null, hello };
    }
  }

  /** Serve: watch for the keeper going away. Call after adoption. */
  start(): void {
    if (this.fd >= 0) this.watch();
    this.schedule();
  }

  /** Something changed: flush once, after the current turn of the event loop. */
  schedule(): void {
    if (this.scheduled || this.closed) return;
    this.scheduled = true;
    queueMicrotask(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  /** Sends the journal now (one message per 253 fds). */
  flush(): void {
    if (this.closed) return;
    this.mirror.setState(this.d.state());
    if (this.fd < 0) return;
    for (const m of this.mirror.flush()) {
      try {
        this.d.kernel.keeperSend(this.fd, m.data, m.fds, KEEPER_SEND_TIMEOUT_MS);
      } catch (e) {
        this.d.log.error('keeper send failed: reconnecting, then sending everything again', { error: (e as Error).message });
        this.disconnect();
        this.dropped();
        return;
      }
    }
  }

  /** A mirror add that may not fit: logged once, counted in mirror.unmirrored. */
  tryAdd(fd: number, meta: string): void {
    this.tryAddMany([fd], meta);
  }

  tryAddMany(fds: readonly number[], meta: string): void {
    try {
      this.mirror.addMany(fds, meta);
      this.schedule();
    } catch (e) {
      if (!(e instanceof MirrorFullError)) throw e;
      this.mirror.unmirrored += fds.filter((fd) => !this.mirror.has(fd)).length;
      this.d.log.once('keeper-full', 'error', 'keeper full: fds stored from now on do not survive an agent restart', { error: e.message });
    }
  }

  /** Before the fd is closed. */
  remove(fd: number): void {
    this.mirror.remove(fd);
    this.schedule();
  }

  /** Agent stop: close the connection, send nothing (the keeper keeps the store for the next agent). */
  close(): void {
    this.closed = true;
    if (this.retry !== null) this.d.timers.clear(this.retry);
    this.retry = null;
    this.disconnect();
  }

  private connect(): Hello {
    const peer = this.d.kernel.keeperConnect(this.d.path);
    this.fd = peer.fd;
    if (peer.uid !== this.d.uid) {
      this.disconnect();
      throw Object.assign(new Error(`keeper socket is served by uid ${peer.uid}, not the agent's uid ${this.d.uid}: not used`), { code: 'EPERM' });
    }
    const recs = parseKeeperMessage(this.receive(KEEPER_REPLY_TIMEOUT_MS).data);
    const h = recs[0];
    if (h?.op !== 'H') throw new KeeperProtocolError('keeper did not say hello');
    if (h.hello.version !== KEEPER_VERSION) {
      this.disconnect();
      throw new KeeperProtocolError(`keeper speaks protocol ${h.hello.version}, this agent ${KEEPER_VERSION}`);
    }
    this.maxSlots = h.hello.maxSlots;
    return h.hello;
  }

  private dump(hello: Hello): KeeperDump {
    const q = new MessageBuilder().query().take()[0]!;
    this.d.kernel.keeperSend(this.fd, q.data, [], KEEPER_SEND_TIMEOUT_MS);
    const out: KeeperDump = { hello, metas: new Map(), fds: [], blob: null };
    const deadline = performance.now() + KEEPER_DUMP_TIMEOUT_MS;
    try {
      for (;;) {
        if (performance.now() > deadline) throw new KeeperProtocolError('keeper dump took too long');
        if (this.takeDumpMessage(this.receive(KEEPER_REPLY_TIMEOUT_MS), out)) return out;
      }
    } catch (e) {
      for (const f of out.fds) this.d.kernel.tryClose(f.fd);
      throw e;
    }
  }

  /** One message of a dump into out; true at its end. Fds it does not name are closed. */
  private takeDumpMessage(dg: NotifyDatagram, out: KeeperDump): boolean {
    const fds = dg.fds;
    const s = dg.stats;
    let used = 0;
    let end = false;
    try {
      for (const r of parseKeeperMessage(dg.data)) {
        if (r.op === 'M') out.metas.set(r.id, r.bytes.toString('utf8'));
        else if (r.op === 'S') out.blob = r.blob.toString('utf8');
        else if (r.op === 'E') end = true;
        else if (r.op !== 'A') throw new KeeperProtocolError(`unexpected keeper record ${r.op} in a dump`);
        else {
          if (used + r.slots.length > fds.length) throw new KeeperProtocolError('keeper dump names more fds than it sent');
          for (const slot of r.slots) {
            out.fds.push({ slot, meta: r.meta, fd: fds[used]!, stat: { dev: s[4 * used]!, ino: s[4 * used + 1]!, mode: s[4 * used + 2]!, flags: s[4 * used + 3]! } });
            used++;
          }
        }
      }
    } finally {
      for (let k = used; k < fds.length; k++) this.d.kernel.tryClose(fds[k]!);
    }
    return end;
  }

  /** One message within timeoutMs; throws on timeout, EOF or truncation. */
  private receive(timeoutMs: number): NotifyDatagram {
    if (!this.d.kernel.waitReadable(this.fd, timeoutMs)) throw Object.assign(new Error(`keeper did not answer within ${timeoutMs} ms`), { code: 'ETIMEDOUT' });
    const dg = this.d.kernel.recvNotify(this.fd, KEEPER_MSG_MAX, KEEPER_FDS_PER_MSG);
    if (dg === null) throw Object.assign(new Error('keeper message vanished'), { code: 'EAGAIN' });
    if (dg.truncated || dg.ctruncated) throw new KeeperProtocolError('keeper message truncated');
    if (dg.data.length === 0) {
      for (const f of dg.fds) this.d.kernel.tryClose(f);
      throw Object.assign(new Error('keeper closed the connection'), { code: 'ECONNRESET' });
    }
    return dg;
  }

  private watch(): void {
    // The keeper never speaks unasked: readable means it went away (EOF) or misbehaves.
    this.handle = this.d.kernel.pollStart(this.fd, 1, () => {
      let dg: NotifyDatagram | null = null;
      try {
        dg = this.d.kernel.recvNotify(this.fd, KEEPER_MSG_MAX, KEEPER_FDS_PER_MSG);
      } catch {
        // handled below as a lost keeper
      }
      if (dg !== null) for (const f of dg.fds) this.d.kernel.tryClose(f);
      if (dg === null || dg.data.length === 0 || dg.truncated) {
        this.d.log.warning('keeper went away: reconnecting, then sending everything again', { path: this.d.path });
        this.disconnect();
        this.dropped();
      }
    });
  }

  private disconnect(): void {
    if (this.handle) this.d.kernel.pollStop(this.handle);
    this.handle = null;
    const was = this.fd >= 0;
    if (was) this.d.kernel.tryClose(this.fd);
    this.fd = -1;
    if (was && !this.closed) this.d.changed?.();
  }

  /** The link is gone: the keeper's content is unknown, so the next connection re-seeds it. */
  private dropped(): void {
    if (this.closed || this.retry !== null) return;
    this.retry = this.d.timers.set(() => {
      this.retry = null;
      this.reconnect();
    }, KEEPER_RETRY_MS);
  }

  private reconnect(): void {
    if (this.closed) return;
    try {
      const hello = this.connect();
      this.mirror.resync(hello.maxSlots);
      this.reseeds++;
      this.d.log.info('keeper connected: sending every fd and the state again', { path: this.d.path, fds: this.mirror.size });
      this.watch();
      this.flush();
      this.d.changed?.();
    } catch (e) {
      this.disconnect();
      this.d.log.once('keeper-retry', 'warning', 'keeper not reachable: retrying', { path: this.d.path, error: (e as Error).message });
      this.dropped();
    }
  }
}
