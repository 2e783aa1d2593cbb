/**
 * A container's restore socket (DIR/NAME/restore): fdstore-exec connects, the
 * agent checks the peer is a process of that container and that no main process
 * of the current run lives (restore/peer.ts), starts a new run with the peer as
 * main pid, and sends it the container's sockets and stored fds.
 * The fds stay in the store (F3.32).
 */
import type { Accepted } from '../native/binding.js';
import { Acceptor } from '../native/acceptor.js';
import type { Kernel } from '../native/kernel.js';
import type { Container } from '../unit/container.js';
import type { Logger } from '../log/log.js';
import { abortMessage, type Passed } from './encode.js';
import { Transfer } from './transfer.js';

const RESTORE_BACKLOG = 16;

export interface RestoreHooks {
  /** Is the peer one of this container's processes? null = yes, else why not. */
  checkPeer(c: Container, peer: Accepted): string | null;
  /**
   * The launcher becomes the main process of a new run, taking ownership of
   * peer.pidfd (null), or is refused (why; peer stays the caller's).
   */
  launcherConnected(c: Container, peer: Accepted): string | null;
  restored(c: Container, fds: number, seconds: number): void;
  /** Sockets bound by the agent for this container, passed before stored fds (F3.27). */
  listeners(c: Container): Passed[];
}

export class RestoreServer {
  private readonly acceptor: Acceptor;
  private readonly transfers = new Set<Transfer>();

  constructor(
    private readonly kernel: Kernel,
    private readonly log: Logger,
    private readonly container: Container,
    readonly path: string,
    private readonly hooks: RestoreHooks,
  ) {
    const fd = kernel.seqpacketListen(path, RESTORE_BACKLOG);
    this.acceptor = new Acceptor(kernel, log, fd, 'restore', { container: container.name }, (peer) => this.serve(peer));
  }

  start(): void {
    this.acceptor.start();
  }

  close(): void {
    this.acceptor.close();
    for (const t of [...this.transfers]) t.cancel('agent shutting down');
  }

  get inFlight(): number {
    return this.transfers.size;
  }

  private serve(peer: Accepted): void {
    const c = this.container;
    const refused = this.hooks.checkPeer(c, peer) ?? this.hooks.launcherConnected(c, peer);
    if (refused !== null) {
      this.log.warning('restore refused', { container: c.name, pid: peer.pid, uid: peer.uid, reason: refused });
      try {
        this.kernel.sendFds(peer.fd, abortMessage(refused), []);
      } catch {
        // The launcher is gone already; nothing to tell.
      }
      this.kernel.tryClose(peer.fd);
      if (peer.pidfd >= 0) this.kernel.tryClose(peer.pidfd);
      return;
    }
    const items = [...this.hooks.listeners(c), ...c.store.list().map((e) => ({ fd: e.fd, name: e.name }))];
    const unpin = c.store.pin();
    const started = performance.now();
    const header = {
      fds: items.length,
      // A new run starts with the configured access: runtime overrides were reset (N4.6).
      notify: c.config.notifyAccess !== 'none',
      fdstoreMax: c.store.max,
      watchdogUsec: c.config.watchdogSec * 1e6,
    };
    const t = new Transfer(this.kernel, peer.fd, header, items, (r) => {
      this.transfers.delete(t);
      unpin();
      if (r.ok) this.hooks.restored(c, items.length, (performance.now() - started) / 1000);
      else this.log.warning('restore failed', { container: c.name, pid: peer.pid, error: r.error });
    });
    this.transfers.add(t);
    t.start();
  }
}
