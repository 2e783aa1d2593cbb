/**
 * The state blob the keeper holds for the next agent: per container its run
 * (phase, main process, STATUS=, ERRNO=, overrides) and its counters. JSON with a
 * version `v`: a version this agent cannot read is refused with a clear message
 * and the agent adopts fds only (docs/keeper.md). Pure.
 *
 * Compatibility rule: a later version may add fields (readers ignore unknown ones)
 * without changing `v`; `v` changes only when a field changes meaning.
 */
import type { NotifyAccess } from '../notify/values.js';
import type { RunPhase } from '../unit/run.js';
import type { Container } from '../unit/container.js';
import { KEEPER_BLOB_MAX } from './wire.js';

export const STATE_VERSION = 1;

export interface RunState {
  phase: RunPhase;
  mainPid: number | null;
  /** /proc/PID/stat starttime of mainPid: a reused pid is not the same process. */
  mainStart: string | null;
  instance: string | null;
  status: string | null;
  errno: number | null;
  notifyAccessOverride: NotifyAccess | null;
  /** µs as a decimal string (a bigint). */
  watchdogUsecOverride: string | null;
  watchdogFailure: string | null;
}

export interface ContainerState {
  run: RunState;
  starts: number;
  restores: number;
  restoreFailures: number;
}

export interface AgentState {
  v: number;
  /** Agents that have served this pod with this keeper, the writer included. */
  agentStarts: number;
  containers: Record<string, ContainerState>;
}

/** STATUS= texts are cut so the blob fits: they are for people, not for logic. */
const STATUS_KEEP = 1024;

export function captureState(agentStarts: number, containers: Iterable<Container>, startOf: (pid: number) => string | null): AgentState {
  const out: AgentState = { v: STATE_VERSION, agentStarts, containers: {} };
  for (const c of containers) {
    const r = c.run;
    out.containers[c.name] = {
      run: {
        phase: r.phase,
        mainPid: r.mainPid,
        mainStart: r.mainPid !== null ? startOf(r.mainPid) : null,
        instance: r.instance,
        status: r.status === null ? null : r.status.slice(0, STATUS_KEEP),
        errno: r.errno,
        notifyAccessOverride: r.notifyAccessOverride,
        watchdogUsecOverride: r.watchdogUsecOverride === null ? null : r.watchdogUsecOverride.toString(),
        watchdogFailure: r.watchdogFailure,
      },
      starts: c.starts,
      restores: c.restores,
      restoreFailures: c.restoreFailures,
    };
  }
  return out;
}

/** The blob text; statuses dropped if it would not fit the keeper. */
export function encodeState(s: AgentState): string {
  let text = JSON.stringify(s);
  if (Buffer.byteLength(text) <= KEEPER_BLOB_MAX) return text;
  for (const c of Object.values(s.containers)) c.run.status = null;
  text = JSON.stringify(s);
  return text;
}

export type StateRead = { ok: true; state: AgentState } | { ok: false; why: string };

export function decodeState(blob: string): StateRead {
  let v: unknown;
  try {
    v = JSON.parse(blob);
  } catch {
    return { ok: false, why: 'keeper state is not JSON' };
  }
  if (typeof v !== 'object' || v === null) return { ok: false, why: 'keeper state is not an object' };
  const o = v as Partial<AgentState>;
  if (o.v !== STATE_VERSION) return { ok: false, why: `keeper state of version ${JSON.stringify(o.v)} is not readable by this agent (reads ${STATE_VERSION})` };
  if (typeof o.agentStarts !== 'number' || typeof o.containers !== 'object' || o.containers === null) return { ok: false, why: 'keeper state lacks agentStarts or containers' };
  return { ok: true, state: o as AgentState };
}

/** /proc/PID/stat field 22 (starttime, clock ticks since boot), null if gone. */
export function procStartOf(read: (path: string) => string): (pid: number) => string | null {
  return (pid) => {
    try {
      const stat = read(`/proc/${pid}/stat`);
      const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      // Fields after the command start at 3 (state): starttime is field 22.
      return rest[22 - 3] ?? null;
    } catch {
      return null;
    }
  };
}
