/**
 * A container's NOTIFY_SOCKET: a datagram socket in the container's directory,
 * read in Node's event loop. Every datagram is read, validated, applied, and its
 * fds stored or closed before the next one: never a throw out of this loop,
 * never an fd left without an owner (ARCHITECTURE "Identity and trust").
 */
import type { NotifyDatagram } from '../native/binding.js';
import type { Kernel, PollHandle } from '../native/kernel.js';
import { applyMessage, closeAll, type ApplyContext, type RunHooks } from './apply.js';
import type { Container } from '../unit/container.js';
import type { Observer } from '../unit/observer.js';
import type { Procs } from '../native/procs.js';
import type { Logger } from '../log/log.js';
import type { FdStat } from '../store/store.js';
import { MAX_NOTIFY_BYTES, checkBarrier, parseDatagram } from './parse.js';

/** systemd's NOTIFY_FD_MAX: control-buffer room per datagram (D1.15). */
export { NOTIFY_FDS_MAX as MAX_NOTIFY_FDS } from '../native/proto.js';
import { NOTIFY_FDS_MAX as MAX_NOTIFY_FDS } from '../native/proto.js';
/** systemd's NOTIFY_RCVBUF_SIZE: bursts of 253-fd messages must not be dropped by the kernel. */
export const NOTIFY_RCVBUF_BYTES = 8 << 20;
/** Datagrams handled per wakeup before yielding to the rest of the event loop. */
const DRAIN_BATCH = 256;

export interface NotifyDeps {
  kernel: Kernel;
  obs: Observer;
  log: Logger;
  procs: Procs;
  nowMs(): number;
  mainPidChanged?(c: Container, pid: number): void;
  /** Runs that start without the launcher (apply.ts). */
  runs?: RunHooks;
}

export class NotifyServer {
  private handle: PollHandle | null = null;
  private failed = false;

  constructor(
    private readonly deps: NotifyDeps,
    private readonly container: Container,
    readonly path: string,
    private readonly fd: number,
  ) {}

  static bind(deps: NotifyDeps, container: Container, path: string): NotifyServer {
    const fd = deps.kernel.notifySocket(path, NOTIFY_RCVBUF_BYTES);
    return new NotifyServer(deps, container, path, fd);
  }

  start(): void {
    this.handle = this.deps.kernel.pollStart(this.fd, 1, (status) => {
      if (status < 0) this.fail(`poll error ${status}`);
      else this.drain(DRAIN_BATCH);
    });
  }

  /**
   * Read until the socket is empty (or a batch is done: the poll fires again).
   * Also called before acting on a main-process exit (D1.5), so a last
   * FDSTORE=1 or READY=1 sent just before exiting is not lost.
   */
  drain(max = Number.MAX_SAFE_INTEGER): void {
    for (let i = 0; i < max && !this.failed; i++) {
      let dg: NotifyDatagram | null;
      try {
        dg = this.deps.kernel.recvNotify(this.fd, MAX_NOTIFY_BYTES, MAX_NOTIFY_FDS);
      } catch (e) {
        // D1.13: any error but EAGAIN/EINTR stops the socket for good.
        this.fail(`recvmsg failed: ${(e as Error).message}`);
        return;
      }
      if (dg === null) return;
      this.handleDatagram(dg);
    }
  }

  /** False once a receive error stopped this socket for good (D1.13). */
  get healthy(): boolean {
    return !this.failed;
  }

  close(): void {
    if (this.handle) this.deps.kernel.pollStop(this.handle);
    this.handle = null;
    this.deps.kernel.tryClose(this.fd);
  }

  private fail(why: string): void {
    this.failed = true;
    this.deps.log.error('notify socket disabled', { container: this.container.name, why });
    if (this.handle) this.deps.kernel.pollStop(this.handle);
    this.handle = null;
  }

  private handleDatagram(dg: NotifyDatagram): void {
    const { obs, kernel, log } = this.deps;
    const c = this.container;
    const ctx: ApplyContext = {
      procs: this.deps.procs,
      obs,
      nowMs: this.deps.nowMs(),
      closeFd: (fd) => void kernel.tryClose(fd),
      mainPidChanged: this.deps.mainPidChanged,
      runs: this.deps.runs,
    };
    let applying = false;
    try {
      if (dg.closedFds > 0) obs.dropped(c.name, 'invalid_message', dg.closedFds, {});
      const parsed = parseDatagram({
        data: dg.data,
        hasCreds: dg.hasCreds,
        truncated: dg.truncated,
        ctruncated: dg.ctruncated,
        fdCount: dg.fds.length,
      });
      const sender = { pid: dg.pid, uid: dg.uid, gid: dg.gid };
      if (!parsed.ok) {
        obs.rejected(c.name, parsed.reason, parsed.detail, sender);
        closeAll(ctx, c, dg.fds, 'invalid_message');
        return;
      }
      const m = parsed.message;
      if (m.flags.barrier) {
        // A2.18: before authorization. Closing the fd is the acknowledgement: every
        // earlier datagram on this socket has been applied already.
        const bad = checkBarrier(m, dg.fds.length);
        if (bad !== null) {
          obs.rejected(c.name, 'bad_barrier', bad, sender);
          closeAll(ctx, c, dg.fds, 'invalid_message');
        } else for (const fd of dg.fds) kernel.tryClose(fd);
        return;
      }
      if (dg.hasCreds && dg.pid === 0) {
        log.once(`pid0:${c.name}`, 'warning', 'sender pid not visible (no shared PID namespace): accepting on socket identity as the main process', {
          container: c.name,
          deviation: 'D1.16',
        });
      }
      applying = true;
      applyMessage(ctx, c, m, sender, dg.fds, statsOf(dg));
    } catch (e) {
      // A bug, not hostile input: keep serving. Before applying, the fds are still ours.
      log.error('notify message handling failed', { container: c.name, error: String((e as Error).stack ?? e) });
      if (!applying) closeAll(ctx, c, dg.fds, 'invalid_message');
    }
  }
}

function statsOf(dg: NotifyDatagram): FdStat[] {
  const out: FdStat[] = new Array(dg.fds.length);
  for (let i = 0; i < dg.fds.length; i++) {
    const s = dg.stats;
    out[i] = { dev: s[4 * i]!, ino: s[4 * i + 1]!, mode: s[4 * i + 2]!, flags: s[4 * i + 3]! };
  }
  return out;
}
