/**
 * Main-process lifecycle of each container: a launcher connecting starts a run
 * and becomes the main process (refused while the current one lives: see
 * restore/peer.ts); a datagram can show a start without the launcher
 * (unit/instance.ts); the watched pidfd becoming readable ends the run. The store
 * is kept or released per `preserve` and `releaseAfterSec`.
 */
import type { Accepted } from '../native/binding.js';
import type { Logger } from '../log/log.js';
import type { Container } from '../unit/container.js';
import type { Kernel, PollHandle } from '../native/kernel.js';
import type { Observer } from '../unit/observer.js';
import type { Procs } from '../native/procs.js';
import type { Run } from '../unit/run.js';
import { containerInstance } from '../unit/instance.js';
import { launcherRefusal, type CurrentMain } from '../restore/peer.js';

interface Watch {
  pidfd: number;
  handle: PollHandle;
  /** In the agent's PID namespace; null when not visible (pid-0 mode: the pidfd alone). */
  pid: number | null;
  runId: number;
}

export interface LifecycleDeps {
  kernel: Kernel;
  log: Logger;
  obs: Observer;
  procs: Procs;
  nowMs(): number;
  /** Drain the container's notify socket: before acting on an exit (D1.5), before a new run. */
  drainNotify(c: Container): void;
  /** releaseAfterSec: close the container's listen: sockets; returns how many. */
  releaseSockets(c: Container): number;
  /** Bind them again before the next restore passes them. */
  rebindSockets(c: Container): void;
}

export class Lifecycle {
  private readonly watches = new Map<string, Watch>();
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>();

  constructor(private readonly d: LifecycleDeps) {}

  /**
   * A launcher connected (the peer check passed). null: it is the main process
   * of a new run and owns nothing of peer's anymore (its pidfd is the watch);
   * else why it is refused (the caller closes peer's fds).
   */
  launcherConnected(c: Container, peer: Accepted): string | null {
    const refusal = this.launcherRefused(c, peer);
    if (refusal !== null) return refusal;
    // D1.5: what the old run queued belongs to it, not to the new one.
    this.d.drainNotify(c);
    const pid = peer.pid > 0 ? peer.pid : null;
    const run = this.beginRun(c, pid);
    if (pid !== null) run.instance = containerInstance(this.d.procs.cgroup(pid));
    if (pid !== null || peer.pidfd >= 0) this.watch(c, pid, peer.pidfd, run.id);
    else this.d.log.once(`no-pidfd:${c.name}`, 'warning', 'main process not visible and no SO_PEERPIDFD (Linux < 6.5): its exit cannot be observed', { container: c.name });
    return null;
  }

  /** Why a launcher connecting now would be refused (null: it would start a run). No run starts here. */
  launcherRefused(c: Container, peer: Accepted): string | null {
    return launcherRefusal(this.currentMain(c), peer.pid);
  }

  /**
   * notify/apply.ts saw a datagram from a new start of the container (no launcher):
   * a new run without a known main pid. Called while reading the notify socket.
   */
  newMainProcess(c: Container, pid: number): void {
    this.beginRun(c, null);
    this.d.log.info('new main process seen without the launcher', { container: c.name, pid });
  }

  /** Is the current run's main process alive? For notify/apply.ts: no side effects. */
  mainAlive(c: Container): boolean {
    const w = this.watches.get(c.name);
    return w !== undefined && w.runId === c.run.id && !this.gone(w);
  }

  /** MAINPID= named a new main process (A2.9): its exit ends the run. */
  mainPidChanged(c: Container, pid: number): void {
    this.unwatch(c.name);
    this.watch(c, pid, -1, c.run.id);
  }

  /** A run taken over from the keeper (docs/keeper.md): watch its main process as if it had just connected. */
  adoptMain(c: Container, pid: number): void {
    this.unwatch(c.name);
    this.watch(c, pid, -1, c.run.id);
  }

  stop(): void {
    for (const name of [...this.watches.keys()]) this.unwatch(name);
    for (const name of [...this.releaseTimers.keys()]) this.cancelRelease(name);
  }

  private beginRun(c: Container, pid: number | null): Run {
    this.unwatch(c.name);
    this.cancelRelease(c.name);
    this.d.rebindSockets(c);
    c.starts++;
    const run = c.startRun(this.d.nowMs(), pid);
    this.d.obs.runStarted(c.name, pid);
    return run;
  }

  /**
   * Reads the kernel, not only the poll callback: an exit whose pidfd event is
   * still queued ends its run here (its datagrams drained) before anything new.
   */
  private currentMain(c: Container): CurrentMain {
    const w = this.watches.get(c.name);
    if (!w || w.runId !== c.run.id) return { alive: false, pid: c.run.mainPid };
    const gone = this.gone(w);
    if (gone) this.mainExited(c, w.runId);
    return { alive: !gone, pid: w.pid };
  }

  /** Exited (a zombie counts: /proc says so) or reaped (the pidfd says so, pid 0 too). */
  private gone(w: Watch): boolean {
    return this.d.procs.reaped(w.pidfd) || (w.pid !== null && !this.d.procs.alive(w.pid));
  }

  private watch(c: Container, pid: number | null, peerPidfd: number, runId: number): void {
    let pidfd = peerPidfd;
    try {
      if (pidfd < 0 && pid !== null) pidfd = this.d.kernel.pidfdOpen(pid);
    } catch (e) {
      this.d.log.warning('cannot watch main process', { container: c.name, pid, error: (e as Error).message });
      return;
    }
    const handle = this.d.kernel.pollStart(pidfd, 1, () => this.mainExited(c, runId));
    this.watches.set(c.name, { pidfd, handle, pid, runId });
  }

  private mainExited(c: Container, runId: number): void {
    this.unwatch(c.name);
    if (c.run.id !== runId) return;
    this.d.drainNotify(c);
    if (c.run.id !== runId) return;
    c.run.exit();
    this.d.obs.stateChanged(c.name, 'exited');
    if (c.config.preserve === 'no') {
      this.release(c, 'preserve is no');
    } else if (c.config.releaseAfterSec > 0) {
      // Read at the exit: a reload changes the timer of the next exit, not this one.
      const after = c.config.releaseAfterSec;
      const t = setTimeout(() => {
        this.releaseTimers.delete(c.name);
        if (c.run.phase !== 'exited') return;
        const why = `no main process for ${after} s`;
        this.release(c, why);
        const n = this.d.releaseSockets(c);
        if (n > 0) this.d.log.warning('listen sockets closed', { container: c.name, count: n, why });
      }, after * 1000);
      t.unref();
      this.releaseTimers.set(c.name, t);
    }
  }

  private release(c: Container, why: string): void {
    const n = c.store.clear();
    if (n > 0) this.d.obs.dropped(c.name, 'released', n, { why });
  }

  private unwatch(name: string): void {
    const w = this.watches.get(name);
    if (!w) return;
    this.watches.delete(name);
    this.d.kernel.pollStop(w.handle);
    this.d.kernel.tryClose(w.pidfd);
  }

  private cancelRelease(name: string): void {
    const t = this.releaseTimers.get(name);
    if (t) clearTimeout(t);
    this.releaseTimers.delete(name);
  }
}
