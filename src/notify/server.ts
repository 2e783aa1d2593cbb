/**
 * A container's NOTIFY_SOCKET: a datagram socket in the container's directory,
 * read in Node's event loop. Every datagram is read, validated, applied, and its
 * fds stored or closed before the next one: never a throw out of this loop,
 * never an fd left without an owner (ARCHITECTURE "Identity and trust").
 */
import { readFileSync } from 'node:fs';
import type { NotifyDatagram } from '../native/binding.js';
import type { Kernel, PollHandle } from '../native/kernel.js';
import { applyMessage, closeAll, type ApplyContext, type RunHooks } from './apply.js';
import type { Container } from '../unit/container.js';
import type { Observer } from '../unit/observer.js';
import type { Procs } from '../native/procs.js';
import type { Logger } from '../log/log.js';
import type { FdStat } from '../store/store.js';
import { MAX_NOTIFY_BYTES, checkBarrier, parseDatagram } from './parse.js';
import { FDS_PER_MSG as MAX_STORE_FDS_PER_MSG } from '../native/proto.js';

/** systemd's NOTIFY_FD_MAX: control-buffer room per datagram (D1.15). */
export { NOTIFY_FDS_MAX as MAX_NOTIFY_FDS } from '../native/proto.js';
import { NOTIFY_FDS_MAX as MAX_NOTIFY_FDS } from '../native/proto.js';
/** systemd's NOTIFY_RCVBUF_SIZE: bursts of 253-fd messages must not be dropped by the kernel. */
export const NOTIFY_RCVBUF_BYTES = 8 << 20;
/**
 * One turn of one socket: what a wakeup handles before yielding, so that every
 * other ready socket (a neighbour's BARRIER=1, a restore, the admin socket) gets
 * its turn in the same loop iteration. A flooder then delays a neighbour by one
 * turn, not by its whole queue. Bounded in datagrams and in fds received, since
 * a 253-fd FDSTORE=1 costs far more than a STATUS=: 64 datagrams (systemd's
 * max_dgram_qlen of 512 lets a queue hold 8 turns) or 16 full messages. Much
 * smaller turns measured worse in bench/fairness.js: the agent then spins on a
 * socket that is never empty while the flooders keep the CPUs.
 */
export const NOTIFY_TURN_DATAGRAMS = 64;
export const NOTIFY_TURN_FDS = 16 * MAX_STORE_FDS_PER_MSG;
/**
 * The drain on main-process exit (D1.5) reads what was queued at that moment and
 * no more: a process left behind that keeps sending must not hold the event loop.
 * Linux queues at most net.unix.max_dgram_qlen + 1 datagrams on an unconnected
 * AF_UNIX datagram socket (senders block or get EAGAIN beyond it; SIOCINQ only
 * gives the next datagram's size), so that bounds what was queued. Capped in case
 * the sysctl was raised very high; the rest is read by the poll as usual.
 */
export const EXIT_DRAIN_MAX = 4096;
/** When /proc/sys/net/unix/max_dgram_qlen cannot be read: the kernel's default is 10 (systemd sets 512). */
const DEFAULT_MAX_DGRAM_QLEN = 512;

export interface NotifyDeps {
  kernel: Kernel;
  obs: Observer;
  log: Logger;
  procs: Procs;
  nowMs(): number;
  mainPidChanged?(c: Container, pid: number): void;
  /** Runs that start without the launcher (apply.ts). */
  runs?: RunHooks;
  /**
   * Before a BARRIER=1 is acknowledged: make what came before it durable (the
   * keeper's mirror, docs/keeper.md), so an acknowledged store survives an agent crash.
   */
  beforeBarrierAck?(): void;
  /** net.unix.max_dgram_qlen; read from /proc at bind when not given. */
  maxDgramQlen?: number;
}

/** net.unix.max_dgram_qlen of this network namespace (the queue bound of the notify sockets). */
export function readMaxDgramQlen(): number {
  try {
    const n = Number(readFileSync('/proc/sys/net/unix/max_dgram_qlen', 'utf8').trim());
    return Number.isSafeInteger(n) && n >= 0 ? n : DEFAULT_MAX_DGRAM_QLEN;
  } catch {
    return DEFAULT_MAX_DGRAM_QLEN;
  }
}

export class NotifyServer {
  private handle: PollHandle | null = null;
  private failed = false;
  /** Datagrams the exit drain reads at most. */
  readonly exitDrainMax: number;

  constructor(
    private readonly deps: NotifyDeps,
    private readonly container: Container,
    readonly path: string,
    private readonly fd: number,
  ) {
    this.exitDrainMax = Math.min((deps.maxDgramQlen ?? readMaxDgramQlen()) + 1, EXIT_DRAIN_MAX);
  }

  static bind(deps: NotifyDeps, container: Container, path: string): NotifyServer {
    const fd = deps.kernel.notifySocket(path, NOTIFY_RCVBUF_BYTES);
    return new NotifyServer(deps, container, path, fd);
  }

  start(): void {
    this.handle = this.deps.kernel.pollStart(this.fd, 1, (status) => {
      if (status < 0) this.fail(`poll error ${status}`);
      else this.read(NOTIFY_TURN_DATAGRAMS, NOTIFY_TURN_FDS);
    });
  }

  /**
   * Before acting on a main-process exit (D1.5): read what is queued, so a last
   * FDSTORE=1 or READY=1 sent just before exiting is not lost, but no more than
   * the queue can hold (exitDrainMax). Returns the datagrams read.
   */
  drain(): number {
    return this.read(this.exitDrainMax, Number.MAX_SAFE_INTEGER);
  }

  /** Read until the socket is empty or a budget is spent (the level-triggered poll fires again). */
  private read(maxDatagrams: number, maxFds: number): number {
    let n = 0;
    let fds = 0;
    while (n < maxDatagrams && fds < maxFds && !this.failed) {
      let dg: NotifyDatagram | null;
      try {
        dg = this.deps.kernel.recvNotify(this.fd, MAX_NOTIFY_BYTES, MAX_NOTIFY_FDS);
      } catch (e) {
        // D1.13: any error but EAGAIN/EINTR stops the socket for good.
        this.fail(`recvmsg failed: ${(e as Error).message}`);
        break;
      }
      if (dg === null) break;
      n++;
      fds += dg.fds.length + dg.closedFds;
      this.handleDatagram(dg);
    }
    return n;
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
        } else {
          this.deps.beforeBarrierAck?.();
          for (const fd of dg.fds) kernel.tryClose(fd);
        }
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
