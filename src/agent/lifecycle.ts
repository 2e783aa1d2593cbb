/**
 * Main-process lifecycle of each container: a launcher connecting starts a run
 * and becomes the main pid; its pidfd becoming readable ends the run. The store
 * is kept or released per `preserve` and `releaseAfterSec`.
 */
import type { Accepted } from '../native/binding.js';
import type { Logger } from '../log/log.js';
import type { Container } from '../unit/container.js';
import { checkPeerCgroup } from '../restore/identity.js';
import type { Kernel, PollHandle } from '../native/kernel.js';
import type { Observer } from '../unit/observer.js';
import type { Procs } from '../native/procs.js';

interface Watch {
  pidfd: number;
  handle: PollHandle;
}

export interface LifecycleDeps {
  kernel: Kernel;
  log: Logger;
  obs: Observer;
  procs: Procs;
  nowMs(): number;
  /** Drain the container's notify socket before acting on an exit (D1.5). */
  drainNotify(c: Container): void;
  /** Latest cgroup seen per container (restore peers, MAINPID targets). */
  knownCgroups(): Map<string, string>;
  /** releaseAfterSec: close the container's listen: sockets; returns how many. */
  releaseSockets(c: Container): number;
  /** Bind them again before the next restore passes them. */
  rebindSockets(c: Container): void;
}

export class Lifecycle {
  private readonly watches = new Map<string, Watch>();
  private readonly releaseTimers = new Map<string, NodeJS.Timeout>();
  private readonly agentCgroup: string | null;

  constructor(private readonly d: LifecycleDeps) {
    this.agentCgroup = d.procs.cgroup(d.procs.self());
  }

  checkPeer(c: Container, peer: Accepted): string | null {
    if (peer.pid === 0) {
      this.d.log.once(`restore-pid0:${c.name}`, 'warning', 'restore peer pid not visible (no shared PID namespace): trusting the socket, main-process exit cannot be observed', { container: c.name });
      return null;
    }
    const cg = this.d.procs.cgroup(peer.pid);
    if (cg === null) return 'peer process is gone';
    const v = checkPeerCgroup(cg, c.name, this.d.knownCgroups(), this.agentCgroup);
    if (!v.ok) return v.reason;
    if (v.undistinguished) this.d.log.once('cgroup-undistinguished', 'info', 'restore peers share the agent cgroup: containers are told apart by socket only', {});
    c.cgroup = cg;
    return null;
  }

  launcherConnected(c: Container, peer: Accepted): void {
    this.unwatch(c.name);
    this.cancelRelease(c.name);
    this.d.rebindSockets(c);
    c.starts++;
    const pid = peer.pid > 0 ? peer.pid : null;
    const run = c.startRun(this.d.nowMs(), pid);
    this.d.obs.runStarted(c.name, pid);
    if (pid !== null) this.watch(c, pid, peer.pidfd, run.id);
  }

  /** MAINPID= named a new main process (A2.9): its exit ends the run. */
  mainPidChanged(c: Container, pid: number): void {
    this.unwatch(c.name);
    this.watch(c, pid, -1, c.run.id);
  }

  private watch(c: Container, pid: number, peerPidfd: number, runId: number): void {
    let pidfd = peerPidfd;
    try {
      if (pidfd < 0) pidfd = this.d.kernel.pidfdOpen(pid);
    } catch (e) {
      this.d.log.warning('cannot watch main process', { container: c.name, pid, error: (e as Error).message });
      return;
    }
    const handle = this.d.kernel.pollStart(pidfd, 1, () => this.mainExited(c, runId));
    this.watches.set(c.name, { pidfd, handle });
  }

  stop(): void {
    for (const name of [...this.watches.keys()]) this.unwatch(name);
    for (const name of [...this.releaseTimers.keys()]) this.cancelRelease(name);
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
      const t = setTimeout(() => {
        this.releaseTimers.delete(c.name);
        if (c.run.phase !== 'exited') return;
        const why = `no main process for ${c.config.releaseAfterSec} s`;
        this.release(c, why);
        const n = this.d.releaseSockets(c);
        if (n > 0) this.d.log.warning('listen sockets closed', { container: c.name, count: n, why });
      }, c.config.releaseAfterSec * 1000);
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
