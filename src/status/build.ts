/**
 * Pure: the agent's state as the operator sees it (GET /status, the FdStore
 * object). Reads the containers, never the kernel: an fd's type comes from the
 * injected typeOf (cached per entry by the caller), times are passed in.
 *
 * What it leaves out is the point: no fd paths, socket addresses or pids. The only
 * app-written text is FDNAME= (bounded by the protocol) and STATUS=, cut to
 * STATUS_TEXT_MAX bytes.
 */
import type { FdType } from '../store/describe.js';
import type { Entry } from '../store/store.js';
import type { Liveness, RunPhase } from '../unit/run.js';
import {
  STATUS_FD_GROUPS_MAX,
  STATUS_SCHEMA,
  STATUS_TEXT_MAX,
  type AgentInfo,
  type AgentStatus,
  type ConfigState,
  type ContainerState,
  type FdGroup,
  type WatchdogState,
} from './types.js';

/** What the status reads of a container (unit/container.ts Container satisfies it). */
export interface StatusContainer {
  readonly name: string;
  readonly config: { readonly listen: readonly { readonly name: string; readonly kind: string }[] };
  readonly store: { readonly size: number; readonly max: number; list(): readonly Entry[]; get(id: number): Entry | undefined };
  readonly run: {
    readonly phase: RunPhase;
    readonly status: string | null;
    readonly errno: number | null;
    readonly watchdogDeadlineMs: number | null;
    readonly watchdogFailure: string | null;
    readiness(): Liveness;
    liveness(): Liveness;
    watchdogMs(): number | null;
  };
  readonly starts: number;
  readonly restores: number;
  readonly restoreFailures: number;
}

/** Counted from events since the agent started (status/tally.ts). */
export interface ContainerTally {
  overLimit: number;
  watchdogFailures: number;
  startTimeouts: number;
  lastRestore: { at: string; fds: number } | null;
}

export const NO_TALLY: ContainerTally = Object.freeze({ overLimit: 0, watchdogFailures: 0, startTimeouts: 0, lastRestore: null });

export interface StatusInput {
  generation: number;
  agent: AgentInfo;
  config: ConfigState;
  containers: Iterable<StatusContainer>;
  tally(container: string): ContainerTally;
  typeOf(entry: Entry): FdType;
  /** The `listen:` sockets in force (a reloaded `listen:` applies at the next start); default: the config's. */
  listening?(container: string): readonly { readonly name: string; readonly kind: string }[];
  /** The runs' monotonic clock now (their deadlines are on it), and the wall clock now (ms since the epoch). */
  monoNowMs: number;
  wallNowMs: number;
}

export function buildStatus(i: StatusInput): AgentStatus {
  const containers: ContainerState[] = [];
  for (const c of i.containers) containers.push(containerState(c, i));
  return { schema: STATUS_SCHEMA, generation: i.generation, agent: i.agent, config: i.config, containers };
}

function containerState(c: StatusContainer, i: StatusInput): ContainerState {
  const t = i.tally(c.name);
  const ready = c.run.readiness();
  const live = c.run.liveness();
  const { groups, omitted } = fdGroups(c.store.list(), i.typeOf);
  return {
    name: c.name,
    state: c.run.phase,
    ready: ready.ok,
    readyReason: ready.reason,
    live: live.ok,
    liveReason: live.reason,
    stored: c.store.size,
    max: c.store.max,
    fdGroups: groups,
    fdGroupsOmitted: omitted,
    restores: c.restores,
    restoreFailures: c.restoreFailures,
    starts: c.starts,
    lastRestore: t.lastRestore,
    overLimit: t.overLimit,
    status: c.run.status === null ? null : cutUtf8(c.run.status, STATUS_TEXT_MAX),
    errno: c.run.errno,
    watchdog: watchdogState(c.run, t, i),
    listen: (i.listening?.(c.name) ?? c.config.listen).map((l) => ({ name: l.name, kind: l.kind })),
  };
}

function watchdogState(run: StatusContainer['run'], t: ContainerTally, i: StatusInput): WatchdogState {
  const ms = run.watchdogMs();
  // A failed watchdog stays failed for the run: later pings re-arm a deadline nothing enforces.
  const armed = run.watchdogFailure === null ? run.watchdogDeadlineMs : null;
  return {
    sec: ms === null ? 0 : ms / 1000,
    deadline: armed === null ? null : wallClock(armed, i),
    failures: t.watchdogFailures,
    startTimeouts: t.startTimeouts,
  };
}

/** A monotonic-clock instant as wall-clock RFC 3339 (UTC, milliseconds). */
function wallClock(monoMs: number, i: StatusInput): string {
  return new Date(Math.round(i.wallNowMs + (monoMs - i.monoNowMs))).toISOString();
}

/**
 * Stored fds counted by (FDNAME, type): the `max` largest groups (ties by name,
 * then type, so two builds of one store agree), and how many groups were left out.
 * The fds of the groups left out are `stored` minus the counts shown.
 */
export function fdGroups(
  entries: readonly Entry[],
  typeOf: (e: Entry) => FdType,
  max = STATUS_FD_GROUPS_MAX,
): { groups: FdGroup[]; omitted: number } {
  const byName = new Map<string, Map<FdType, number>>();
  for (const e of entries) {
    const type = typeOf(e);
    let types = byName.get(e.name);
    if (!types) byName.set(e.name, (types = new Map()));
    types.set(type, (types.get(type) ?? 0) + 1);
  }
  const all: FdGroup[] = [];
  for (const [name, types] of byName) for (const [type, count] of types) all.push({ name, type, count });
  all.sort((a, b) => b.count - a.count || cmp(a.name, b.name) || cmp(a.type, b.type));
  return { groups: all.slice(0, max), omitted: Math.max(0, all.length - max) };
}

function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * At most `maxBytes` of `text` in UTF-8, cut before a character, never inside one
 * (a cut sequence would decode to U+FFFD and show as garbage in kubectl).
 */
export function cutUtf8(text: string, maxBytes: number): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  let end = maxBytes;
  // 10xxxxxx is a continuation byte: back up to the lead byte of its character.
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}
