/**
 * Socket activation (systemd's .socket units): the sockets a container's
 * `listen:` names, bound by the agent at start and passed first on every restore
 * (F3.27), named by their config name. They are the agent's own, like a socket
 * unit's: not in the store, never deduplicated against it (F3.29), kept for the
 * agent's life (a stopped or crashed app does not close them), closed on stop.
 */
import { makeParents } from './rundir.js';
import type { ListenConfig } from '../config/types.js';
import type { SysError } from '../native/sys.js';
import type { Passed } from '../restore/encode.js';
import type { Kernel } from '../native/kernel.js';
// A socket the keeper kept (keeper/ defines it: agent/ composes keeper/, not the reverse).
import type { AdoptedSocket } from '../keeper/adopt.js';

// Checked with the rest of the config (config/address.ts); re-exported for the agent's start check.
export { listenAddressProblem } from '../config/address.js';

export interface BoundListener {
  name: string;
  kind: ListenConfig['kind'];
  address: string;
  /** -1 while held (see `held`). */
  fd: number;
  /**
   * EADDRINUSE at the agent's start: a restarted agent finds the socket still held
   * by the running app (it got the previous agent's socket). Not passed; bound
   * again when the next main process starts (item 15).
   */
  held: boolean;
}

/** A listen entry could not be bound: names the container, the entry and the errno. */
export class ListenError extends Error {
  readonly code: string;
  constructor(container: string, l: ListenConfig, cause: unknown) {
    const e = cause as Partial<SysError> & Error;
    super(`container ${container}: cannot bind listen socket ${l.name} (${l.kind} ${l.address}): ${e.message}`, { cause });
    this.name = 'ListenError';
    this.code = typeof e.code === 'string' ? e.code : 'EINVAL';
  }
}

/** One container's activation sockets. Owns their fds. */
export class Listeners {
  /** Closed by releaseAfterSec; bound again when the next main process starts. */
  private released = false;
  /** A reloaded `listen:` not in force yet: applied when the next main process starts. */
  private pending: readonly ListenConfig[] | null = null;

  private constructor(
    private readonly kernel: Kernel,
    private list: BoundListener[],
    private readonly container: string,
    private cfgs: readonly ListenConfig[],
  ) {}

  /**
   * A config reload changed `listen:`. Nothing is bound or closed now: the running
   * app has the sockets it was given, and systemd's socket units change on their
   * restart too. The change is made when the next main process starts (rebind()).
   */
  configure(cfgs: readonly ListenConfig[]): void {
    this.pending = sameListen(cfgs, this.cfgs) ? null : [...cfgs];
  }

  /** A `listen:` change waits for the next start. */
  get changePending(): boolean {
    return this.pending !== null;
  }

  /**
   * Binds every entry in order; on any failure closes what it bound and throws
   * ListenError. With `heldOk` (the start of an agent that replaces an earlier one),
   * a tcp/udp address in use is kept as held instead: the running app still has the
   * earlier agent's socket.
   */
  static bind(kernel: Kernel, container: string, cfgs: readonly ListenConfig[], heldOk = false, adopted: readonly AdoptedSocket[] = []): Listeners {
    const bound: BoundListener[] = [];
    const claimed = new Set<AdoptedSocket>();
    for (const l of cfgs) {
      // A socket the keeper kept from the previous agent (docs/keeper.md): the same
      // kernel object, its backlog and queued connections included; never bound again.
      const kept = adopted.find((a) => !claimed.has(a) && a.kind === l.kind && a.address === l.address);
      if (kept) {
        claimed.add(kept);
        bound.push({ name: l.name, kind: l.kind, address: l.address, fd: kept.fd, held: false });
        continue;
      }
      try {
        bound.push(bindOne(kernel, l));
      } catch (e) {
        // Unix paths never are: a socket file is unlinked and bound again, anything else is not ours.
        if (heldOk && (l.kind === 'tcp' || l.kind === 'udp') && (e as Partial<SysError>).code === 'EADDRINUSE') {
          bound.push({ name: l.name, kind: l.kind, address: l.address, fd: -1, held: true });
          continue;
        }
        for (const b of bound) if (b.fd >= 0) kernel.tryClose(b.fd);
        for (const a of adopted) if (!claimed.has(a)) kernel.tryClose(a.fd);
        throw new ListenError(container, l, e);
      }
    }
    // Sockets of entries no longer configured: the previous agent's, closed as a reload would.
    for (const a of adopted) if (!claimed.has(a)) kernel.tryClose(a.fd);
    return new Listeners(kernel, bound, container, cfgs);
  }

  /** Names of entries held by the running app since the agent started. */
  held(): string[] {
    return this.list.filter((b) => b.held).map((b) => b.name);
  }

  /**
   * releaseAfterSec passed without a main process: close the sockets so the ports
   * refuse connections instead of queueing handshakes nobody will accept.
   */
  release(): number {
    const n = this.list.length;
    this.close();
    this.released = n > 0;
    return n;
  }

  /**
   * A main process starts again: bind what release() closed, and every entry held
   * at the agent's start (the app that held it is gone by now). True if anything
   * was bound. Throws ListenError for the first entry that still cannot be bound;
   * the others are bound and kept.
   */
  rebind(): boolean {
    if (this.pending !== null) return this.applyPending();
    if (this.released) {
      this.list = Listeners.bind(this.kernel, this.container, this.cfgs).list;
      this.released = false;
      return true;
    }
    let bound = false;
    let first: ListenError | null = null;
    this.cfgs.forEach((l, i) => {
      const b = this.list[i];
      if (!b?.held) return;
      try {
        this.list[i] = bindOne(this.kernel, l);
        bound = true;
      } catch (e) {
        first ??= new ListenError(this.container, l, e);
      }
    });
    if (first !== null) throw first;
    return bound;
  }

  /**
   * The next start after a `listen:` change. An entry whose kind and address are
   * unchanged keeps its socket, and with it the connections queued in its backlog
   * (a new backlog or reusePort on it applies once it is bound anew: after an agent
   * restart or releaseAfterSec); entries no longer listed are closed first, so a
   * new entry can take an address an old one had; new ones are bound. An entry
   * that cannot be bound is kept as held (passed once bound, retried at each
   * start) and the first such error is thrown after the others are in place.
   */
  private applyPending(): boolean {
    const next = this.pending ?? this.cfgs;
    this.pending = null;
    const old = this.released ? [] : this.list;
    this.released = false;
    const claimed = new Set<BoundListener>();
    const plan = next.map((l) => {
      const same = old.find((b) => !claimed.has(b) && !b.held && b.kind === l.kind && b.address === l.address);
      if (same === undefined) return null;
      claimed.add(same);
      return { ...same, name: l.name };
    });
    for (const b of old) if (!claimed.has(b) && b.fd >= 0) this.kernel.tryClose(b.fd);
    let first: ListenError | null = null;
    this.list = next.map((l, i) => {
      const kept = plan[i];
      if (kept) return kept;
      try {
        return bindOne(this.kernel, l);
      } catch (e) {
        first ??= new ListenError(this.container, l, e);
        return { name: l.name, kind: l.kind, address: l.address, fd: -1, held: true };
      }
    });
    this.cfgs = next;
    if (first !== null) throw first;
    return true;
  }

  get size(): number {
    return this.list.length;
  }

  entries(): readonly BoundListener[] {
    return this.list;
  }

  /**
   * The sockets to pass, in config order. Like systemd before every exec
   * (flags_fds: NonBlocking=no), O_NONBLOCK is cleared first: it lives on the
   * shared file description, and the previous app may have set it.
   */
  passed(): Passed[] {
    const live = this.list.filter((b) => !b.held);
    for (const b of live) {
      try {
        this.kernel.setNonblock(b.fd, false);
      } catch {
        // Cannot happen for a socket we own; the app copes with O_NONBLOCK anyway.
      }
    }
    return live.map((b) => ({ fd: b.fd, name: b.name }));
  }

  /** Closes every socket (agent stop). Unix socket files stay, as with systemd's RemoveOnStop=no. */
  close(): void {
    for (const b of this.list) if (b.fd >= 0) this.kernel.tryClose(b.fd);
    this.list = [];
  }
}

function bindOne(kernel: Kernel, l: ListenConfig): BoundListener {
  // systemd creates missing parent directories (DirectoryMode=0755) too.
  if (l.kind.startsWith('unix') && l.address.startsWith('/')) makeParents(l.address, 'listen socket');
  const fd = kernel.listenSocket(l.kind, l.address, l.backlog, l.reusePort);
  return { name: l.name, kind: l.kind, address: l.address, fd, held: false };
}

/** The same entries in the same order (plain data). */
function sameListen(a: readonly ListenConfig[], b: readonly ListenConfig[]): boolean {
  return a.length === b.length && a.every((l, i) => JSON.stringify(l) === JSON.stringify(b[i]));
}
