/**
 * A listening unix socket served in Node's event loop: accept every pending
 * connection with its peer credentials and hand each to onPeer, which owns the
 * connection (and its pidfd) from then on. Shared by the restore and admin sockets.
 *
 * Out of fds or memory (EMFILE, ENFILE, ENOMEM, ENOBUFS) the connection stays in
 * the backlog and the level-triggered poll would fire again at once: instead the
 * poll is paused and retried after a backoff (doubling up to a cap), with one log
 * line when accepts pause and one when they resume. Any error that is not about
 * the one connection is handled the same way, so nothing can spin here.
 */
import type { Accepted } from './binding.js';
import type { Fields, Logger } from '../log/log.js';
import type { Kernel, PollHandle } from './kernel.js';

/** First retry after running out: long enough not to spin, short for a launcher waiting to restore. */
export const ACCEPT_BACKOFF_MS = 50;
/** Longest pause between retries while the shortage lasts (the launcher waits FDSTORE_EXEC_TIMEOUT_MS). */
export const ACCEPT_BACKOFF_MAX_MS = 1_000;

/** accept() errors about the one connection (accept(2)): the next one may be fine. */
const PER_CONNECTION = new Set(['ECONNABORTED', 'EPROTO', 'EPERM', 'EINTR']);

export interface AcceptTimers {
  set(fn: () => void, ms: number): unknown;
  clear(t: unknown): void;
}

const realTimers: AcceptTimers = {
  set: (fn, ms) => setTimeout(fn, ms),
  clear: (t) => clearTimeout(t as NodeJS.Timeout),
};

export class Acceptor {
  private handle: PollHandle | null = null;
  private timer: unknown = null;
  private backoffMs = 0;
  /** Failed accepts since the pause began (logged when accepts resume). */
  private failures = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly log: Logger,
    /** The listening fd; owned (closed by close()). */
    private readonly fd: number,
    private readonly what: string,
    private readonly fields: Fields,
    private readonly onPeer: (peer: Accepted) => void,
    private readonly timers: AcceptTimers = realTimers,
  ) {}

  start(): void {
    this.handle = this.kernel.pollStart(this.fd, 1, () => this.acceptAll());
  }

  /** True while accepts are paused after a shortage. */
  get paused(): boolean {
    return this.timer !== null;
  }

  close(): void {
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
    if (this.handle) this.kernel.pollStop(this.handle);
    this.handle = null;
    this.kernel.tryClose(this.fd);
  }

  private acceptAll(): void {
    for (;;) {
      let peer: Accepted | null;
      try {
        peer = this.kernel.accept(this.fd);
      } catch (e) {
        const code = (e as { code?: string }).code ?? '';
        if (!PER_CONNECTION.has(code)) return this.pause(e as Error);
        // This connection is lost; the socket keeps serving.
        this.log.warning(`${this.what} accept failed`, { ...this.fields, error: (e as Error).message });
        continue;
      }
      if (this.failures > 0) {
        this.log.info(`${this.what} accepts resumed`, { ...this.fields, failedAttempts: this.failures });
        this.failures = 0;
        this.backoffMs = 0;
      }
      if (peer === null) return;
      this.onPeer(peer);
    }
  }

  private pause(e: Error): void {
    if (this.failures++ === 0) {
      this.log.warning(`${this.what} accept failed: paused until resources are free`, {
        ...this.fields,
        error: e.message,
        retryMs: ACCEPT_BACKOFF_MS,
      });
    }
    this.backoffMs = this.backoffMs === 0 ? ACCEPT_BACKOFF_MS : Math.min(this.backoffMs * 2, ACCEPT_BACKOFF_MAX_MS);
    if (this.handle) this.kernel.pollUpdate(this.handle, 0);
    this.timer = this.timers.set(() => this.retry(), this.backoffMs);
  }

  private retry(): void {
    this.timer = null;
    if (!this.handle) return;
    this.kernel.pollUpdate(this.handle, 1);
    // Level-triggered: a connection still waiting fires the poll again at once.
  }
}
