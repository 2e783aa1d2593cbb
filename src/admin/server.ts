/**
 * The admin socket (`fdstore ls`, `fdstore clean`). Only the agent's own uid may
 * talk to it (SO_PEERCRED): apps share the PID namespace and could otherwise
 * list or empty other containers' stores.
 */
import { Socket } from 'node:net';
import { Acceptor } from '../native/acceptor.js';
import type { Kernel } from '../native/kernel.js';
import type { Accepted } from '../native/binding.js';
import type { Logger } from '../log/log.js';
import { ADMIN_REQUEST_MAX_BYTES, type AdminRequest, type AdminResponse } from './protocol.js';

const ADMIN_BACKLOG = 16;
/** A client that sends no full request line in this time is cut off. */
const ADMIN_CLIENT_TIMEOUT_MS = 5000;

export class AdminServer {
  private readonly acceptor: Acceptor;
  private readonly clients = new Set<Socket>();

  constructor(
    private readonly kernel: Kernel,
    private readonly log: Logger,
    readonly path: string,
    private readonly allowedUid: number,
    private readonly handler: (req: AdminRequest) => AdminResponse,
  ) {
    const fd = kernel.streamListen(path, ADMIN_BACKLOG);
    this.acceptor = new Acceptor(kernel, log, fd, 'admin', {}, (peer) => this.admit(peer));
  }

  start(): void {
    this.acceptor.start();
  }

  close(): void {
    this.acceptor.close();
    for (const c of this.clients) c.destroy();
  }

  private admit(a: Accepted): void {
    if (a.pidfd >= 0) this.kernel.tryClose(a.pidfd);
    if (a.uid !== this.allowedUid) {
      this.log.warning('admin connection refused', { uid: a.uid, pid: a.pid, reason: 'uid differs from the agent' });
      this.kernel.tryClose(a.fd);
      return;
    }
    this.serve(new Socket({ fd: a.fd, readable: true, writable: true }));
  }

  private serve(sock: Socket): void {
    this.clients.add(sock);
    let buf = '';
    sock.setEncoding('utf8');
    sock.setTimeout(ADMIN_CLIENT_TIMEOUT_MS, () => sock.destroy());
    sock.on('close', () => this.clients.delete(sock));
    sock.on('error', () => sock.destroy());
    sock.on('data', (d: string) => {
      buf += d;
      const nl = buf.indexOf('\n');
      if (nl < 0) {
        if (buf.length > ADMIN_REQUEST_MAX_BYTES) sock.destroy();
        return;
      }
      sock.removeAllListeners('data');
      sock.end(JSON.stringify(this.answer(buf.slice(0, nl))) + '\n');
    });
  }

  private answer(line: string): AdminResponse {
    let req: AdminRequest;
    try {
      req = JSON.parse(line) as AdminRequest;
    } catch {
      return { ok: false, error: 'request is not JSON', code: 'EINVAL' };
    }
    try {
      return this.handler(req);
    } catch (e) {
      const err = e as Error & { code?: string };
      return { ok: false, error: err.message, code: err.code ?? 'EFAIL' };
    }
  }
}
