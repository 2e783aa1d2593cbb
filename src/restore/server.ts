/**
 * A container's restore socket (DIR/NAME/restore): fdstore-exec connects, the
 * agent checks the peer is a process of that container and that no main process
 * of the current run lives (restore/peer.ts), starts a new run with the peer as
 * main pid, and sends it the container's sockets and stored fds.
 * The fds stay in the store (F3.32).
 *
 * One transfer per container at a time (docs/protocol.md "Restores in flight"):
 * a connection arriving while one is in flight waits in a queue of QUEUE_MAX for
 * at most QUEUE_WAIT_MS, holding nothing but its connection; more, or longer, is
 * refused with an "X reason" message the launcher prints. While one waits, the
 * transfer in flight is abandoned if its peer stalls (Transfer.hurry). A restore takes its
 * snapshot when it starts, after draining the container's notify socket, so it
 * reflects every datagram the kernel queued before its launcher connected.
 */
import type { Accepted } from '../native/binding.js';
import { Acceptor } from '../native/acceptor.js';
import type { Kernel } from '../native/kernel.js';
import type { Container } from '../unit/container.js';
import type { Logger } from '../log/log.js';
import { QUEUE_MAX, QUEUE_WAIT_MS } from './deadlines.js';
import { abortMessage, type Passed } from './encode.js';
import type { RestoreFailure } from '../unit/reasons.js';
import { Transfer, type TransferResult } from './transfer.js';

const RESTORE_BACKLOG = 16;

export interface RestoreHooks {
  /** Is the peer one of this container's processes? null = yes, else why not. */
  checkPeer(c: Container, peer: Accepted): string | null;
  /**
   * The launcher becomes the main process of a new run, taking ownership of
   * peer.pidfd (null), or is refused (why; peer stays the caller's).
   */
  launcherConnected(c: Container, peer: Accepted): string | null;
  /** Why launcherConnected would refuse peer now (null: it would not); starts nothing. */
  launcherRefused(c: Container, peer: Accepted): string | null;
  restored(c: Container, fds: number, seconds: number): void;
  /** A connection ended without its fds (counted; logged rate-limited by the observer). */
  failed(c: Container, reason: RestoreFailure, fields: Record<string, unknown>): void;
  /** Sockets bound by the agent for this container, passed before stored fds (F3.27). */
  listeners(c: Container): Passed[];
}

interface Waiting {
  peer: Accepted;
  timer: NodeJS.Timeout;
}

export class RestoreServer {
  private readonly acceptor: Acceptor;
  private current: { transfer: Transfer; pid: number } | null = null;
  private readonly waiting: Waiting[] = [];
  private closed = false;

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
    this.closed = true;
    this.acceptor.close();
    for (const w of this.waiting.splice(0)) {
      clearTimeout(w.timer);
      this.refuse(w.peer, 'shutdown', 'agent shutting down');
    }
    this.current?.transfer.cancel('agent shutting down');
  }

  /** Transfers in flight: 0 or 1. */
  get inFlight(): number {
    return this.current === null ? 0 : 1;
  }

  /** Connections waiting for the transfer in flight. */
  get queued(): number {
    return this.waiting.length;
  }

  private serve(peer: Accepted): void {
    const c = this.container;
    // Refused at once, not queued: a peer that cannot start a run (another process
    // while the main one lives) must neither wait nor hurry the transfer in flight.
    const refused = this.hooks.checkPeer(c, peer) ?? this.hooks.launcherRefused(c, peer);
    if (refused !== null) {
      this.refuse(peer, 'refused', refused);
      return;
    }
    if (this.current === null) {
      this.begin(peer);
      return;
    }
    const busy = this.current.pid;
    if (this.waiting.length >= QUEUE_MAX) {
      this.refuse(peer, 'busy', `restore of container ${c.name} busy: one in flight (pid ${busy}) and ${QUEUE_MAX} waiting; try again`);
      return;
    }
    const w: Waiting = {
      peer,
      timer: setTimeout(() => {
        const i = this.waiting.indexOf(w);
        if (i >= 0) this.waiting.splice(i, 1);
        this.publish();
        const pid = this.current?.pid ?? busy;
        this.refuse(peer, 'busy', `restore of container ${c.name} busy: waited ${QUEUE_WAIT_MS} ms for the one in flight (pid ${pid}); try again`);
      }, QUEUE_WAIT_MS),
    };
    this.waiting.push(w);
    this.publish();
    this.current.transfer.hurry();
  }

  /** Start the transfer for peer: new run (or refusal), snapshot, send. */
  private begin(peer: Accepted): void {
    const c = this.container;
    if (this.peerGone(peer)) {
      this.refuse(peer, 'disconnected', 'launcher closed the connection while waiting');
      this.next();
      return;
    }
    // Decided now, not at accept: the run may have ended while this one waited. On
    // success the old run's queued datagrams were applied first (D1.5, issue 7 item 6),
    // so the snapshot below reflects every datagram queued before the launcher connected.
    const refused = this.hooks.launcherConnected(c, peer);
    if (refused !== null) {
      this.refuse(peer, 'refused', refused);
      this.next();
      return;
    }
    // The snapshot: references to the entries, no copies; encoded one batch at a time.
    const items: readonly Passed[] = this.hooks.listeners(c).concat(c.store.list());
    const unpin = c.store.pin();
    const started = performance.now();
    const header = {
      fds: items.length,
      // A new run starts with the configured access: runtime overrides were reset (N4.6).
      notify: c.config.notifyAccess !== 'none',
      fdstoreMax: c.store.max,
      watchdogUsec: c.config.watchdogSec * 1e6,
    };
    const transfer = new Transfer(this.kernel, peer.fd, header, items, (r: TransferResult) => {
      this.current = null;
      unpin();
      if (r.ok) this.hooks.restored(c, items.length, (performance.now() - started) / 1000);
      else this.hooks.failed(c, r.reason, { pid: peer.pid, error: r.error, sentFds: r.sentFds, fds: items.length });
      this.publish();
      this.next();
    });
    this.current = { transfer, pid: peer.pid };
    this.publish();
    transfer.start();
    if (this.waiting.length > 0 && this.current?.transfer === transfer) transfer.hurry();
  }

  private next(): void {
    if (this.closed || this.current !== null) return;
    const w = this.waiting.shift();
    if (!w) return;
    clearTimeout(w.timer);
    this.publish();
    this.begin(w.peer);
  }

  /** A launcher only reads: EOF (an empty read) means it is gone; anything else, or EAGAIN, that it is there. */
  private peerGone(peer: Accepted): boolean {
    try {
      const b = this.kernel.recv(peer.fd, 1);
      return b !== null && b.length === 0;
    } catch {
      return true;
    }
  }

  /** Tell the launcher why (it prints the reason and exits 111), close, count. */
  private refuse(peer: Accepted, reason: RestoreFailure, why: string): void {
    try {
      this.kernel.sendFds(peer.fd, abortMessage(why), []);
    } catch {
      // The launcher is gone already; nothing to tell.
    }
    this.kernel.tryClose(peer.fd);
    if (peer.pidfd >= 0) this.kernel.tryClose(peer.pidfd);
    this.hooks.failed(this.container, reason, { pid: peer.pid, uid: peer.uid, error: why });
  }

  /** What `fdstore ls` shows about restores of this container. */
  private publish(): void {
    this.container.restoresInFlight = this.inFlight;
    this.container.restoresWaiting = this.waiting.length;
  }
}
