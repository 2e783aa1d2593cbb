/**
 * A listening unix socket served in Node's event loop: accept every pending
 * connection with its peer credentials and hand each to onPeer, which owns the
 * connection (and its pidfd) from then on. Shared by the restore and admin sockets.
 */
import type { Accepted } from './binding.js';
import type { Fields, Logger } from '../log/log.js';
import type { Kernel, PollHandle } from './kernel.js';

export class Acceptor {
  private handle: PollHandle | null = null;

  constructor(
    private readonly kernel: Kernel,
    private readonly log: Logger,
    /** The listening fd; owned (closed by close()). */
    private readonly fd: number,
    private readonly what: string,
    private readonly fields: Fields,
    private readonly onPeer: (peer: Accepted) => void,
  ) {}

  start(): void {
    this.handle = this.kernel.pollStart(this.fd, 1, () => this.acceptAll());
  }

  close(): void {
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
        // ECONNABORTED, EMFILE...: this connection is lost, the socket keeps serving.
        this.log.warning(`${this.what} accept failed`, { ...this.fields, error: (e as Error).message });
        return;
      }
      if (peer === null) return;
      this.onPeer(peer);
    }
  }
}
