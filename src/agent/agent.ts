/**
 * The agent: one Container per app container, each with its notify socket and
 * fd store, one epoll set reporting hang-ups of stored fds, and the admin socket.
 * Built and started by cli/agent.ts; every dependency is passed in.
 */
import { closeSync, lstatSync } from 'node:fs';
import { dirname } from 'node:path';
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
import { listenAddressProblem, Listeners } from './listen.js';
import { Lifecycle } from './lifecycle.js';
import { PeerCheck } from '../restore/peer.js';
import { containerInstance } from '../unit/instance.js';
import type { RunHooks } from '../notify/apply.js';
import type { Passed } from '../restore/encode.js';

/** Longest AF_UNIX path: sun_path is 108 bytes including the terminating NUL. */
export const SUN_PATH_MAX = 107;
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

  constructor(private readonly d: AgentDeps) {
    for (const cfg of d.configs) {
      checkPaths(d.runDir, cfg.name);
      checkListen(cfg);
    }
    checkPathFits(adminSocketPath(d.runDir));
    this.lifecycle = new Lifecycle({
      kernel: d.kernel,
      log: d.log,
      obs: d.obs,
      procs: d.procs,
      nowMs: d.nowMs,
      drainNotify: (c) => this.notify.get(c.name)?.drain(),
      releaseSockets: (c) => this.sockets.get(c.name)?.release() ?? 0,
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
      for (const cfg of this.d.configs) this.openContainer(top.fd, cfg);
      this.admin = binding(adminSocketPath(runDir), () => new AdminServer(kernel, this.d.log, at(adminFd, ADMIN_SOCKET), this.d.uid, (r) => this.adminRequest(r)));
      this.epollHandle = kernel.pollStart(this.epfd, 1, () => this.onHangups());
      for (const s of this.notify.values()) s.start();
      for (const s of this.restore.values()) s.start();
      this.admin.start();
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
    if (closed > 0) this.d.obs.dropped(c.name, 'max_lowered', closed, { max: cfg.fileDescriptorStoreMax, stored: before });
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
  private openContainer(topFd: number, cfg: ContainerConfig): void {
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
      const c = new Container(cfg, this.storeOps(), this.d.nowMs(), agentRestarted);
      // Bound first, like socket units before their services: a busy port fails the start.
      // After an agent restart an address in use is the running app's: start anyway
      // (item 15). On a first start a busy port fails it.
      const bound = Listeners.bind(kernel, cfg.name, cfg.listen, agentRestarted);
      sockets = bound;
      for (const b of bound.entries()) {
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
          this.d.obs.restored(cc.name, n, sec);
        },
        failed: (cc, reason, fields) => {
          cc.restoreFailures++;
          this.d.obs.restoreFailed(cc.name, reason, fields);
        },
        listeners: (cc) => this.listeners(cc),
      }));
      // Apps run as any uid; connecting to a socket file needs write permission on it.
      // Never through a symlink (the directory is the agent's and not writable by others anyway).
      kernel.chmodAt(dfd, NOTIFY_NAME, 0o666);
      kernel.chmodAt(dfd, RESTORE_NAME, 0o666);
      installLauncher(dfd, dir);
      this.containers.set(cfg.name, c);
      this.sockets.set(cfg.name, bound);
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
      if (n > 0) this.d.obs.dropped(c.name, 'released', n, { why });
    }
    if (this.epollHandle) this.d.kernel.pollStop(this.epollHandle);
    if (this.epfd >= 0) this.d.kernel.tryClose(this.epfd);
    this.epfd = -1;
    // Last: until here another agent must not take the run dir over.
    if (this.lockFd >= 0) closeSync(this.lockFd);
    this.lockFd = -1;
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
    if (n > 0) this.d.obs.dropped(name, 'removed', n, { by: 'clean' });
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
        this.d.obs.dropped(c.name, 'hangup', 1, {});
        return;
      }
    }
  }

  private storeOps(): StoreOps {
    const k = this.d.kernel;
    return {
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
      obs: this.d.obs,
      log: this.d.log,
      procs: this.d.procs,
      nowMs: this.d.nowMs,
      mainPidChanged: (c, pid) => this.lifecycle.mainPidChanged(c, pid),
      runs: this.runs,
    };
  }
}

/** An earlier agent's socket at name in the directory dfd (never through a symlink). */
function hasSocket(dfd: number, name: string): boolean {
  try {
    return lstatSync(at(dfd, name)).isSocket();
  } catch {
    return false;
  }
}

/** Why a container directory may be someone else's: the kubelet makes a subPath directory that is missing. */
const SUBPATH_HINT = ' (made by the kubelet for a subPath mount before the agent started? run the agent as a native sidecar so it creates the directory)';

/** Bind the socket named path; a failure names the path and, for EACCES, the likely cause. */
function binding<T>(path: string, bind: () => T): T {
  try {
    return bind();
  } catch (e) {
    const err = e as Error & { code?: string };
    const hint =
      err.code === 'EACCES'
        ? `: the agent's uid ${process.getuid?.()} cannot write ${dirname(path)} (created by someone else first? run the agent as a native sidecar so it creates the directory)`
        : '';
    throw Object.assign(new Error(`cannot bind ${path}: ${err.message}${hint}`), { code: err.code });
  }
}

function checkPaths(runDir: string, name: string): void {
  for (const p of [notifyPath(runDir, name), restorePath(runDir, name)]) checkPathFits(p);
}

function checkListen(cfg: ContainerConfig): void {
  cfg.listen.forEach((l, i) => {
    const problem = listenAddressProblem(l.kind, l.address);
    if (problem !== null) {
      throw Object.assign(new Error(`container ${cfg.name}: listen[${i}] ${l.name}: ${l.kind} address ${JSON.stringify(l.address)}: ${problem}`), {
        code: 'ECONFIG',
      });
    }
  });
}

function checkPathFits(path: string): void {
  if (Buffer.byteLength(path) > SUN_PATH_MAX) {
    throw Object.assign(new Error(`socket path ${path} is longer than ${SUN_PATH_MAX} bytes (sun_path): use a shorter --run-dir or container name`), {
      code: 'ECONFIG',
    });
  }
}

/** Settings that differ, by field name (for the log). */
function changedFields(a: ContainerConfig, b: ContainerConfig): string[] {
  return (Object.keys(b) as (keyof ContainerConfig)[]).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}
