/**
 * The agent's use of the keeper (docs/keeper.md): the link, the adoption of its
 * dump at start, and the hooks that keep the mirror current (store adds and
 * removes, listen socket changes, state changes). Absent a keeper, agent.ts holds
 * no Keeping and nothing here runs.
 */
import { readFileSync } from 'node:fs';
import type { Kernel } from '../native/kernel.js';
import type { Logger } from '../log/log.js';
import type { Observer } from '../unit/observer.js';
import type { Container } from '../unit/container.js';
import type { Entry } from '../store/store.js';
import type { BoundListener, Listeners } from './listen.js';
import { KeeperLink } from '../keeper/link.js';
import { Mirror } from '../keeper/mirror.js';
import { KEEPER_SLOTS_MAX } from '../keeper/wire.js';
import { encodeMeta } from '../keeper/meta.js';
import { captureState, encodeState, procStartOf } from '../keeper/state.js';
import { adoptRun, sortDump, type AdoptedListen, type Adoption } from '../keeper/adopt.js';

/** What the agent learnt from the keeper (metrics, /status). */
export interface KeeperInfo {
  /** Agents that served this pod with this keeper before this one. */
  agentRestarts: number;
  /** Fds and listen sockets taken over from the keeper at start. */
  adoptedFds: number;
  /** An earlier agent served here, and the keeper holds nothing (it restarted too): every store was lost. */
  storeLost: boolean;
  connected(): boolean;
  /** Times the keeper was seeded again after it went away. */
  reseeds(): number;
  /** Fds not mirrored because the keeper was full. */
  unmirrored(): number;
}

export interface KeepingDeps {
  kernel: Kernel;
  log: Logger;
  path: string;
  uid: number;
  nowMs(): number;
  containers(): Iterable<Container>;
  /** Watch an adopted run's main process (Lifecycle.adoptMain). */
  adoptMain(c: Container, pid: number): void;
  /** The keeper link went down or came back (the status's generation moves). */
  changed?(): void;
}

export class Keeping {
  readonly link: KeeperLink;
  /** Listen sockets mirrored, per container (diffed by object after each change). */
  private readonly listenMirrored = new Map<string, Set<BoundListener>>();
  private agentStarts = 1;
  private adoptedFds = 0;
  private readonly startOf = procStartOf((p) => readFileSync(p, 'latin1'));
  info: KeeperInfo;

  constructor(private readonly d: KeepingDeps) {
    this.link = new KeeperLink(
      {
        kernel: d.kernel,
        log: d.log,
        path: d.path,
        uid: d.uid,
        state: () => encodeState(captureState(this.agentStarts, d.containers(), this.startOf)),
        timers: { set: (fn, ms) => setTimeout(fn, ms).unref(), clear: (t) => clearTimeout(t as NodeJS.Timeout) },
        changed: () => d.changed?.(),
      },
      new Mirror(KEEPER_SLOTS_MAX),
    );
    this.info = {
      agentRestarts: 0,
      adoptedFds: 0,
      storeLost: false,
      connected: () => this.link.connected,
      reseeds: () => this.link.reseeds,
      unmirrored: () => this.link.mirror.unmirrored,
    };
  }

  /** Every decision may change the state blob: an observer that flushes after the turn that made it. */
  observer(shape: Observer): Observer {
    const o = {} as Record<string, () => void>;
    for (const k of Object.keys(shape)) o[k] = () => this.link.schedule();
    return o as unknown as Observer;
  }

  /** StoreOps hooks for one container's store. */
  storeHooks(container: string): { added(entries: readonly Entry[]): void; removed(e: Entry): void } {
    // One call per FDSTORE=1 message, not per fd: every entry of it has the same name and poll flag.
    return {
      added: (entries) => {
        const e = entries[0];
        if (e === undefined) return;
        const meta = encodeMeta({ kind: 'store', container, name: e.name, poll: e.poll });
        this.link.tryAddMany(entries.map((x) => x.fd), meta);
      },
      removed: (e) => this.link.remove(e.fd),
    };
  }

  /**
   * At start, before any container is opened: connect, take the dump.
   * `earlierAgent`: an earlier agent served this run dir (its sockets are there).
   */
  open(earlierAgent: boolean): Adoption | null {
    const { dump, hello } = this.link.openAtStart();
    this.link.mirror.resync(hello?.maxSlots ?? KEEPER_SLOTS_MAX);
    this.info.storeLost = hello !== null && dump === null && earlierAgent;
    if (this.info.storeLost) this.d.log.error('store lost: an earlier agent served this pod and the keeper holds nothing (it restarted too)', { keeper: this.d.path });
    if (!dump) return null;
    const a = sortDump(dump);
    // Adopted slots are the keeper's already: start from its numbering, not from an 'R'.
    this.link.mirror = new Mirror(dump.hello.maxSlots);
    if (a.stateProblem !== null) this.d.log.error('keeper state refused: adopting fds only', { why: a.stateProblem });
    if (a.state) this.agentStarts = a.state.agentStarts + 1;
    this.info.agentRestarts = this.agentStarts - 1;
    return a;
  }

  /** The listen sockets the keeper kept for a container (owned by Listeners.bind from then on). */
  keptListen(a: Adoption | null, name: string): AdoptedListen[] {
    const kept = a?.listen.get(name) ?? [];
    a?.listen.delete(name);
    return kept;
  }

  /** After Listeners.bind: mirror entries of the sockets taken over, then the rest. */
  listenBound(name: string, l: Listeners, kept: readonly AdoptedListen[]): void {
    const mirrored = new Set<BoundListener>();
    for (const b of l.entries()) {
      const k = kept.find((x) => x.fd === b.fd);
      if (!k) continue;
      this.link.mirror.adopt(k.slot, k.fd, k.meta, k.metaText);
      mirrored.add(b);
      this.adoptedFds++;
      this.d.log.info('listen socket taken over from the keeper', { container: name, name: b.name, kind: b.kind, address: b.address });
    }
    this.listenMirrored.set(name, mirrored);
    this.syncListen(name, l);
  }

  /** A container's stored fds and run from the keeper. */
  adoptContainer(c: Container, a: Adoption): void {
    const fds = a.stores.get(c.name) ?? [];
    a.stores.delete(c.name);
    let taken = 0;
    for (const f of fds) {
      const e = c.store.adopt(f.fd, f.stat, f.name, f.poll);
      if (e === null) continue;
      this.link.mirror.adopt(f.slot, e.fd, f.meta, f.metaText);
      taken++;
    }
    this.adoptedFds += taken;
    const st = a.state?.containers[c.name];
    const pid = st ? adoptRun(c, st, this.startOf, this.d.nowMs()) : null;
    if (pid !== null) this.d.adoptMain(c, pid);
    this.d.log.info('store taken over from the keeper', { container: c.name, fds: taken, refused: fds.length - taken, run: c.run.phase, mainPid: c.run.mainPid });
  }

  /** After every container took its part: close what none claimed, free its slots. */
  adopted(a: Adoption): void {
    let closed = 0;
    for (const list of a.stores.values()) for (const f of list) closed += Number(this.d.kernel.tryClose(f.fd));
    for (const list of a.listen.values()) for (const f of list) closed += Number(this.d.kernel.tryClose(f.fd));
    for (const f of a.unknown) closed += Number(this.d.kernel.tryClose(f.fd));
    if (closed > 0) this.d.log.warning('keeper fds of containers this agent does not serve, or not understood: closed', { count: closed });
    this.link.mirror.adopted(a.slots, a.metaIds);
    this.info.adoptedFds = this.adoptedFds;
  }

  /** Mirror a container's listen sockets as they are now (after bind, rebind, release). */
  syncListen(name: string, l: Listeners | undefined): void {
    const now = new Set((l?.entries() ?? []).filter((b) => b.fd >= 0));
    const before = this.listenMirrored.get(name) ?? new Set<BoundListener>();
    for (const b of before) if (!now.has(b)) this.link.remove(b.fd);
    for (const b of now) if (!before.has(b)) this.link.tryAdd(b.fd, encodeMeta({ kind: 'listen', container: name, name: b.name, listenKind: b.kind, address: b.address }));
    this.listenMirrored.set(name, now);
  }

  start(): void {
    this.link.start();
  }

  /** Send the journal now (a BARRIER=1 is about to be acknowledged). */
  flush(): void {
    this.link.flush();
  }

  /** Agent stop: no message, the keeper keeps everything for the next agent. */
  close(): void {
    this.link.close();
  }
}
