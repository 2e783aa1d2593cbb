/**
 * The agent: one Container per app container, each with its notify socket and
 * fd store, one epoll set reporting hang-ups of stored fds, and the admin socket.
 * Built and started by cli/agent.ts; every dependency is passed in.
 */
import { closeSync } from 'node:fs';
import { binding, changedFields, checkListen, checkPathFits, checkPaths, hasSocket, SUBPATH_HINT } from './checks.js';
import { AdminServer } from '../admin/server.js';
import { describeContainers } from '../admin/describe.js';
import type { AdminRequest, AdminResponse } from '../admin/protocol.js';
import { ADMIN_DIR, ADMIN_SOCKET, adminSocketPath, containerDir, LOCK_NAME, lockPath, notifyPath, restorePath } from '../unit/layout.js';
import { NOTIFY_NAME, RESTORE_NAME } from '../native/proto.js';
import { at, lockRunDir, openOwnDir, openRunDir } from './rundir.js';
import type { ContainerConfig, ListenConfig } from '../config/types.js';
import type { Logger } from '../log/log.js';
import { NotifyServer, type NotifyDeps } from '../notify/server.js';
import type { StoreOps } from '../store/store.js';
import { Container } from '../unit/container.js';
import type { Kernel, PollHandle } from '../native/kernel.js';
import type { Observer } from '../unit/observer.js';
import type { Procs } from '../native/procs.js';
import type { DedupeMethod, FdInfo } from '../native/binding.js';
import type { EpollEvent, SysError } from '../native/sys.js';
import { RestoreServer } from '../restore/server.js';
import { installLauncher } from './install.js';
import { Listeners } from './listen.js';
import { Lifecycle } from './lifecycle.js';
import { PeerCheck } from '../restore/peer.js';
import { containerInstance } from '../unit/instance.js';
import type { RunHooks } from '../notify/apply.js';
import type { Passed } from '../restore/encode.js';
import { fanout } from '../unit/observer.js';
import type { Adoption } from '../keeper/adopt.js';
import { Keeping, type KeeperInfo } from './keeping.js';

export { SUN_PATH_MAX } from './checks.js';
/** epoll events read per call. */
const EPOLL_BATCH = 64;

export interface AgentDeps {
  kernel: Kernel;
  log: Logger;
  obs: Observer;
  procs: Procs;
  nowMs(): number;
  runDir: string;
  configs: ContainerConfig[];
  dedupe: DedupeMethod;
  uid: number;
  /** Throws a ConfigError when these settings do not fit the agent's fd limit (agent/limits.ts). */
  checkBudget?(configs: readonly ContainerConfig[]): void;
  /** The keeper's socket (docs/keeper.md); absent: no keeper, the stores die with the agent. */
  keeper?: { path: string; changed?(): void };
}


export class Agent {
  readonly containers = new Map<string, Container>();
  private readonly notify = new Map<string, NotifyServer>();
  private readonly restore = new Map<string, RestoreServer>();
  /** Socket-activation sockets per container (`listen:`), the agent's own for its whole life. */
  private readonly sockets = new Map<string, Listeners>();
  private readonly lifecycle: Lifecycle;
  private readonly peers: PeerCheck;
  private readonly runs: RunHooks;
  private admin: AdminServer | null = null;
  private epfd = -1;
  /** flock on DIR/.fdstore/lock, held for the agent's life (item 13). */
  private lockFd = -1;
  private epollHandle: PollHandle | null = null;
  private lastId = 0;
  private epollFailed = false;
  private stopped = false;
  private readonly obs: Observer;
  private readonly keeper: Keeping | null;

  constructor(private readonly d: AgentDeps) {
    this.keeper = d.keeper
      ? new Keeping({
          kernel: d.kernel,
          log: d.log,
          path: d.keeper.path,
          uid: d.uid,
          nowMs: d.nowMs,
          containers: () => this.containers.values(),
          adoptMain: (c, pid) => this.lifecycle.adoptMain(c, pid),
          ...(d.keeper.changed ? { changed: d.keeper.changed } : {}),
        })
      : null;
    // Every decision may change the state blob: flush after the turn that made it.
    this.obs = this.keeper ? fanout(d.obs, this.keeper.observer(d.obs)) : d.obs;
    for (const cfg of d.configs) {
      checkPaths(d.runDir, cfg.name);
      checkListen(cfg);
    }
    checkPathFits(adminSocketPath(d.runDir));
    this.lifecycle = new Lifecycle({
      kernel: d.kernel,
      log: d.log,
      obs: this.obs,
      procs: d.procs,
      nowMs: d.nowMs,
      drainNotify: (c) => this.notify.get(c.name)?.drain(),
      releaseSockets: (c) => {
        const n = this.sockets.get(c.name)?.release() ?? 0;
        this.keeper?.syncListen(c.name, this.sockets.get(c.name));
        return n;
      },
      rebindSockets: (c) => {
        const sockets = this.sockets.get(c.name);
        const reloaded = sockets?.changePending === true;
        try {
          if (sockets?.rebind()) {
            if (reloaded) this.d.log.info('listen sockets changed as configured', { container: c.name, listen: sockets.entries().map((b) => b.name) });
            else this.d.log.info('listen sockets bound again', { container: c.name });
          }
        } catch (e) {
          // The app starts without them rather than not at all; the log says why.
          this.d.log.error('cannot bind listen sockets again', { container: c.name, error: (e as Error).message });
        }
        this.keeper?.syncListen(c.name, this.sockets.get(c.name));
      },
    });
    this.peers = new PeerCheck({ procs: d.procs, log: d.log, runDir: d.runDir, names: () => [...this.containers.keys()] });
    this.runs = {
      mainAlive: (c) => this.lifecycle.mainAlive(c),
      newMainProcess: (c, pid) => this.lifecycle.newMainProcess(c, pid),
      agentInstance: containerInstance(d.procs.cgroup(d.procs.self())),
    };
  }

  /** Check the run dir, take its lock, bind every socket, then serve. Throws (nothing left open) if any step fails. */
  start(): void {
    const { kernel, runDir, uid } = this.d;
    const dirFds: number[] = [];
    try {
      // Before anything is stored: same-uid processes cannot read /proc/<agent>/fd or root (item 12).
      kernel.setDumpable(false);
      const top = openRunDir(runDir, uid);
      dirFds.push(top.fd);
      if (top.note !== null) this.d.log.warning('run dir is shared', { note: top.note });
      const adminFd = openOwnDir(top.fd, runDir, ADMIN_DIR, uid, 0o700);
      dirFds.push(adminFd);
      // Before any socket is touched: a second agent must not unlink the first one's.
      this.lockFd = lockRunDir(kernel, adminFd, lockPath(runDir), LOCK_NAME, process.pid);
      this.epfd = kernel.epollCreate();
      const earlier = this.d.configs.some((cfg) => hasSocket(containerDir(runDir, cfg.name), RESTORE_NAME, true));
      const adoption = this.keeper?.open(earlier) ?? null;
      try {
        for (const cfg of this.d.configs) this.openContainer(top.fd, cfg, adoption);
      } finally {
        if (adoption) this.keeper?.adopted(adoption);
      }
      this.admin = binding(adminSocketPath(runDir), () => new AdminServer(kernel, this.d.log, at(adminFd, ADMIN_SOCKET), this.d.uid, (r) => this.adminRequest(r)));
      this.epollHandle = kernel.pollStart(this.epfd, 1, () => this.onHangups());
      for (const s of this.notify.values()) s.start();
      for (const s of this.restore.values()) s.start();
      this.admin.start();
      this.keeper?.start();
    } catch (e) {
      this.stop('start failed');
      throw e;
    } finally {
      for (const fd of dirFds) closeSync(fd);
    }
  }

  /**
   * A reloaded configuration (daemon-reload), with every container the agent has
   * (config/load.ts carryOver): checked whole first, so a ConfigError changes
   * nothing; then applied per field as docs/configuration.md says. A container new
   * to the agent gets its directory and sockets now; one that cannot be set up is
   * logged and left out (a SIGHUP retries it).
   */
  reconfigure(next: readonly ContainerConfig[]): void {
    if (this.stopped) return;
    const after = new Map<string, ContainerConfig>();
    for (const c of this.containers.values()) after.set(c.name, c.config);
    for (const cfg of next) {
      checkPaths(this.d.runDir, cfg.name);
      checkListen(cfg);
      after.set(cfg.name, cfg);
    }
    this.d.checkBudget?.([...after.values()]);
    for (const cfg of next) {
      const c = this.containers.get(cfg.name);
      if (c) this.update(c, cfg);
      else this.addLive(cfg);
    }
  }

  private update(c: Container, cfg: ContainerConfig): void {
    const changed = changedFields(c.config, cfg);
    if (changed.length === 0) return;
    const before = c.store.size;
    const closed = c.reconfigure(cfg);
    if (closed > 0) this.obs.dropped(c.name, 'max_lowered', closed, { max: cfg.fileDescriptorStoreMax, stored: before });
    if (changed.includes('listen')) this.sockets.get(c.name)?.configure(cfg.listen);
    this.d.log.info('container settings changed', { container: c.name, changed });
  }

  /** A container the agent did not have: set it up as start() does, nothing left open on failure. */
  private addLive(cfg: ContainerConfig): void {
    let topFd = -1;
    try {
      const top = openRunDir(this.d.runDir, this.d.uid);
      topFd = top.fd;
      this.openContainer(topFd, cfg);
      this.notify.get(cfg.name)?.start();
      this.restore.get(cfg.name)?.start();
      this.d.log.info('container added', { container: cfg.name });
    } catch (e) {
      const err = e as Error & { code?: string };
      this.d.log.error('cannot add container: retried on SIGHUP or the next change of the config file', { container: cfg.name, error: err.message, code: err.code });
    } finally {
      if (topFd >= 0) closeSync(topFd);
    }
  }

  /**
   * One container's directory, sockets and launcher, registered only once all of
   * them exist; on a failure what was made for it is closed and the error thrown.
   */
  private openContainer(topFd: number, cfg: ContainerConfig, adoption: Adoption | null = null): void {
    const { kernel, runDir, uid } = this.d;
    const dir = containerDir(runDir, cfg.name);
    // Never delete and recreate: a subPath mount keeps pointing at the old directory.
    const dfd = openOwnDir(topFd, runDir, cfg.name, uid, 0o755, SUBPATH_HINT);
    let sockets: Listeners | null = null;
    let server: NotifyServer | null = null;
    let restore: RestoreServer | null = null;
    try {
      // A restore socket left by an earlier agent: this is an agent restart, and the
      // app may be running (docs/scope.md, item 15).
      const agentRestarted = hasSocket(dfd, RESTORE_NAME);
      const c = new Container(cfg, this.storeOps(cfg.name), this.d.nowMs(), agentRestarted);
      // Bound first, like socket units before their services: a busy port fails the start.
      // After an agent restart an address in use is the running app's: start anyway
      // (item 15). On a first start a busy port fails it. Sockets the keeper kept
      // are taken over instead (docs/keeper.md).
      const kept = this.keeper?.keptListen(adoption, cfg.name) ?? [];
      const bound = Listeners.bind(kernel, cfg.name, cfg.listen, agentRestarted, kept);
      sockets = bound;
      for (const b of bound.entries()) {
        if (kept.some((k) => k.fd === b.fd)) continue;
        if (b.held) {
          this.d.log.warning('listen socket held by the running app: bound again when the app next starts', {
            container: cfg.name, name: b.name, kind: b.kind, address: b.address,
          });
        } else this.d.log.info('listen socket bound', { container: cfg.name, name: b.name, kind: b.kind, address: b.address });
      }
      // Bound through the directory's fd: a DIR/NAME swapped after the check is never followed.
      server = binding(notifyPath(runDir, cfg.name), () => NotifyServer.bind(this.notifyDeps(), c, at(dfd, NOTIFY_NAME)));
      restore = binding(restorePath(runDir, cfg.name), () => new RestoreServer(kernel, this.d.log, c, at(dfd, RESTORE_NAME), {
        checkPeer: (cc, peer) => this.peers.check(cc, peer),
        launcherConnected: (cc, peer) => this.lifecycle.launcherConnected(cc, peer),
        launcherRefused: (cc, peer) => this.lifecycle.launcherRefused(cc, peer),
        restored: (cc, n, sec) => {
          cc.restores++;
          this.obs.restored(cc.name, n, sec);
        },
        failed: (cc, reason, fields) => {
          cc.restoreFailures++;
          this.obs.restoreFailed(cc.name, reason, fields);
        },
        listeners: (cc) => this.listeners(cc),
      }));
      // Apps run as any uid; connecting to a socket file needs write permission on it.
      // Never through a symlink (the directory is the agent's and not writable by others anyway).
      kernel.chmodAt(dfd, NOTIFY_NAME, 0o666);
      kernel.chmodAt(dfd, RESTORE_NAME, 0o666);
      installLauncher(dfd, dir);
      if (adoption) this.keeper?.adoptContainer(c, adoption);
      this.containers.set(cfg.name, c);
      this.sockets.set(cfg.name, bound);
      this.keeper?.listenBound(cfg.name, bound, kept);
      this.notify.set(cfg.name, server);
      this.restore.set(cfg.name, restore);
    } catch (e) {
      restore?.close();
      server?.close();
      sockets?.close();
      throw e;
    } finally {
      closeSync(dfd);
    }
  }

  /** Close every socket and every stored fd. Idempotent. */
  stop(why: string): void {
    if (this.stopped) return;
    this.stopped = true;
    // First, and without a message: what is closed below stays with the keeper for
    // the next agent (an upgrade's SIGTERM must not empty the store).
    this.keeper?.close();
    for (const s of this.restore.values()) s.close();
    this.restore.clear();
    this.lifecycle.stop();
    for (const s of this.notify.values()) s.close();
    this.notify.clear();
    this.admin?.close();
    this.admin = null;
    for (const l of this.sockets.values()) l.close();
    this.sockets.clear();
    for (const c of this.containers.values()) {
      const n = c.store.clear();
      if (n > 0) this.obs.dropped(c.name, 'released', n, { why });
    }
    if (this.epollHandle) this.d.kernel.pollStop(this.epollHandle);
    if (this.epfd >= 0) this.d.kernel.tryClose(this.epfd);
    this.epfd = -1;
    // Last: until here another agent must not take the run dir over.
    if (this.lockFd >= 0) closeSync(this.lockFd);
    this.lockFd = -1;
  }

  /** The keeper as this agent found and uses it; null without --keeper. */
  get keeperInfo(): KeeperInfo | null {
    return this.keeper?.info ?? null;
  }

  /** /healthz: every socket bound and still served. */
  health(): { ok: boolean; reason: string } {
    if (this.stopped) return { ok: false, reason: 'agent stopped' };
    if (this.epollFailed) return { ok: false, reason: 'hang-up detection failed' };
    for (const [name, s] of this.notify) if (!s.healthy) return { ok: false, reason: `notify socket of ${name} failed` };
    return { ok: true, reason: 'ok' };
  }

  /** Empty one store (`fdstore clean`, systemctl clean --what=fdstore). */
  clean(name: string): number {
    const c = this.mustContainer(name);
    const n = c.store.clear();
    if (n > 0) this.obs.dropped(name, 'removed', n, { by: 'clean' });
    return n;
  }

  describe(only?: string): AdminResponse {
    const list = only === undefined ? [...this.containers.values()] : [this.mustContainer(only)];
    const d = describeContainers(list, (fd) => this.fdInfo(fd), this.d.nowMs());
    for (const c of d.containers) {
      c.listen = this.listening(c.name);
      c.listenHeld = this.sockets.get(c.name)?.held() ?? [];
    }
    return { ok: true, ...d };
  }

  /**
   * A container's `listen:` sockets in force (held ones included). Not its config's
   * listen: a reloaded one applies at the container's next start.
   */
  listening(name: string): { name: string; kind: ListenConfig['kind']; address: string }[] {
    return (this.sockets.get(name)?.entries() ?? []).map((b) => ({ name: b.name, kind: b.kind, address: b.address }));
  }

  private fdInfo(fd: number): FdInfo | null {
    try {
      return this.d.kernel.fdInfo(fd);
    } catch {
      return null;
    }
  }

  private adminRequest(r: AdminRequest): AdminResponse {
    switch (r.op) {
      case 'ls':
        return this.describe(r.container);
      case 'clean':
        return { ok: true, closed: this.clean(r.container) };
      default:
        return { ok: false, error: 'unknown op', code: 'EINVAL' };
    }
  }

  private mustContainer(name: string): Container {
    const c = this.containers.get(name);
    if (!c) throw Object.assign(new Error(`no container named ${name}`), { code: 'ENOENT' });
    return c;
  }

  /** F3.17: EPOLLHUP/EPOLLERR on stored fds. Keys are store ids, never fd numbers. */
  private onHangups(): void {
    for (;;) {
      let ev: EpollEvent[];
      try {
        ev = this.d.kernel.epollWait(this.epfd, EPOLL_BATCH);
      } catch (e) {
        // The epoll fd stays readable: polling on would spin. Hang-ups go unnoticed
        // from now on, which /healthz reports.
        this.d.log.error('epoll_wait failed: hang-ups of stored fds are no longer detected', { error: (e as Error).message });
        if (this.epollHandle) this.d.kernel.pollStop(this.epollHandle);
        this.epollHandle = null;
        this.epollFailed = true;
        return;
      }
      for (const { key: id } of ev) this.hangup(id);
      if (ev.length < EPOLL_BATCH) return;
    }
  }

  /** Sockets bound by the agent for a container (socket activation), passed before stored fds (F3.27). */
  private listeners(c: Container): Passed[] {
    return this.sockets.get(c.name)?.passed() ?? [];
  }

  private hangup(id: number): void {
    for (const c of this.containers.values()) {
      if (c.store.hangup(id)) {
        this.obs.dropped(c.name, 'hangup', 1, {});
        return;
      }
    }
  }

  private storeOps(container: string): StoreOps {
    const k = this.d.kernel;
    return {
      ...this.keeper?.storeHooks(container),
      sameFile: (a, b) => k.sameFile(a, b, this.d.dedupe),
      pollAdd: (fd, key) => {
        try {
          k.epollAdd(this.epfd, fd, key);
          return 0;
        } catch (e) {
          return -((e as SysError).errno ?? 1);
        }
      },
      pollAddMany: (fds, keys) => k.epollAddMany(this.epfd, fds, keys),
      pollDel: (fd) => {
        try {
          k.epollDel(this.epfd, fd);
        } catch (e) {
          this.d.log.error('epoll_ctl(DEL) failed', { fd, error: (e as Error).message });
        }
      },
      close: (fd) => void k.tryClose(fd),
      nextId: () => ++this.lastId,
    };
  }

  private notifyDeps(): NotifyDeps {
    return {
      kernel: this.d.kernel,
      obs: this.obs,
      log: this.d.log,
      procs: this.d.procs,
      nowMs: this.d.nowMs,
      mainPidChanged: (c, pid) => this.lifecycle.mainPidChanged(c, pid),
      runs: this.runs,
      beforeBarrierAck: () => this.keeper?.flush(),
    };
  }
}
