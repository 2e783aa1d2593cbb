/**
 * What a restarted agent takes from a keeper's dump: per container the stored fds
 * and the listen sockets (by their metadata), and the runs (by the state blob,
 * when this agent can read its version). Pure, except that nothing here closes
 * fds: the agent does, for `unknown` and for what no container claims.
 */
import type { Container } from '../unit/container.js';
import type { ListenConfig } from '../config/types.js';
import type { FdStat } from '../store/store.js';
import { decodeMeta } from './meta.js';
import { decodeState, type AgentState, type ContainerState } from './state.js';
import type { DumpedFd, KeeperDump } from './link.js';

export interface AdoptedStoreFd {
  slot: number;
  meta: number;
  metaText: string;
  fd: number;
  stat: FdStat;
  name: string;
  poll: boolean;
}

/** A listen: socket the keeper kept for a container (owned by the agent's Listeners.bind once adopted). */
export interface AdoptedSocket {
  kind: ListenConfig['kind'];
  address: string;
  fd: number;
}

export interface AdoptedListen extends AdoptedSocket {
  slot: number;
  meta: number;
  metaText: string;
}

export interface Adoption {
  stores: Map<string, AdoptedStoreFd[]>;
  listen: Map<string, AdoptedListen[]>;
  state: AgentState | null;
  /** Why the blob was not used (null when it was, or there was none). */
  stateProblem: string | null;
  /** Fds whose metadata this agent does not understand: to be closed. */
  unknown: DumpedFd[];
  /** Every slot and metadata id the keeper holds (the mirror frees what is not adopted). */
  slots: number[];
  metaIds: number[];
}

export function sortDump(dump: KeeperDump): Adoption {
  const a: Adoption = { stores: new Map(), listen: new Map(), state: null, stateProblem: null, unknown: [], slots: [], metaIds: [...dump.metas.keys()] };
  for (const f of dump.fds) {
    a.slots.push(f.slot);
    const text = dump.metas.get(f.meta);
    const m = text === undefined ? null : decodeMeta(text);
    if (m === null || text === undefined) {
      a.unknown.push(f);
      continue;
    }
    if (m.kind === 'store') {
      push(a.stores, m.container, { slot: f.slot, meta: f.meta, metaText: text, fd: f.fd, stat: f.stat, name: m.name, poll: m.poll });
    } else {
      push(a.listen, m.container, { slot: f.slot, meta: f.meta, metaText: text, fd: f.fd, kind: m.listenKind, address: m.address });
    }
  }
  if (dump.blob !== null) {
    const r = decodeState(dump.blob);
    if (r.ok) a.state = r.state;
    else a.stateProblem = r.why;
  }
  return a;
}

function push<T>(m: Map<string, T[]>, k: string, v: T): void {
  let l = m.get(k);
  if (!l) m.set(k, (l = []));
  l.push(v);
}

/**
 * Carries a container's run and counters over. Returns the main pid to watch, or
 * null when the recorded main process is gone, is not the same process (its start
 * time differs: a reused pid), or was never known; the run then stays `unknown`,
 * as after an agent restart without a keeper.
 */
export function adoptRun(c: Container, s: ContainerState, startOf: (pid: number) => string | null, nowMs: number): number | null {
  c.starts = s.starts;
  c.restores = s.restores;
  c.restoreFailures = s.restoreFailures;
  const r = s.run;
  if (r.mainPid === null || r.mainStart === null || r.phase === 'exited') return null;
  if (startOf(r.mainPid) !== r.mainStart) return null;
  const run = c.run;
  run.phase = r.phase;
  run.mainPid = r.mainPid;
  run.instance = r.instance;
  run.status = r.status;
  run.errno = r.errno;
  run.notifyAccessOverride = r.notifyAccessOverride;
  run.watchdogUsecOverride = r.watchdogUsecOverride === null ? null : BigInt(r.watchdogUsecOverride);
  run.watchdogFailure = r.watchdogFailure;
  // Ping times are not mirrored: the adoption counts as a ping (docs/keeper.md, deviations).
  if (r.phase === 'ready' || r.phase === 'reloading') run.armWatchdog(nowMs);
  if (r.phase === 'starting' && c.config.timeoutStartSec > 0) run.startDeadlineMs = nowMs + c.config.timeoutStartSec * 1000;
  return r.mainPid;
}
