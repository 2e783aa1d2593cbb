/**
 * An agent's /status body, as the operator accepts it. The agent runs in a pod the
 * operator does not trust (any process there can serve that port), so the body is
 * hostile input: parsed with a size bound, every field picked by name, type-checked,
 * strings cut and lists bounded, so that whatever a pod says it can only make its
 * own FdStore wrong, never the operator crash or grow. Pure.
 */
import {
  STATUS_FD_GROUPS_MAX, STATUS_SCHEMA, STATUS_TEXT_MAX,
  type AgentInfo, type AgentStatus, type ContainerState, type FdGroup, type KeeperState,
} from '../../status/types.js';

/** Bigger than any honest status (64 containers x 16 groups), small enough to hold for 10,000 pods. */
export const STATUS_BODY_MAX = 256 * 1024;
/** Containers a pod can have in practice; more is a hostile body. */
export const CONTAINERS_MAX = 64;
const LISTEN_MAX = 64;
const NAME_MAX = 255;
const SHORT_MAX = 128;
const PHASES = new Set(['unknown', 'starting', 'ready', 'reloading', 'stopping', 'exited']);

export class StatusError extends Error {
  readonly code = 'ESTATUS';
}

type Raw = Record<string, unknown>;

export function parseStatus(body: string): AgentStatus {
  if (body.length > STATUS_BODY_MAX) throw new StatusError(`status body over ${STATUS_BODY_MAX} bytes`);
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch {
    throw new StatusError('status body is not JSON');
  }
  const r = obj(raw, 'status');
  if (r.schema !== STATUS_SCHEMA) throw new StatusError(`unknown status schema ${JSON.stringify(String(r.schema)).slice(0, 80)} (this operator reads ${STATUS_SCHEMA})`);
  const agent = obj(r.agent, 'agent');
  const config = obj(r.config, 'config');
  const list = Array.isArray(r.containers) ? r.containers : fail('containers: a list');
  if (list.length > CONTAINERS_MAX) fail(`containers: at most ${CONTAINERS_MAX}`);
  return {
    schema: STATUS_SCHEMA,
    generation: int(r.generation, 'generation'),
    agent: agentOf(agent),
    config: {
      policy: config.policy === null || config.policy === undefined ? null : policyOf(obj(config.policy, 'config.policy')),
      hash: config.hash === null || config.hash === undefined ? null : hex(config.hash),
      loadedAt: time(config.loadedAt),
      error: config.error === null || config.error === undefined ? null : errorOf(obj(config.error, 'config.error')),
      reloads: int(config.reloads ?? 0, 'config.reloads'),
      rejected: int(config.rejected ?? 0, 'config.rejected'),
    },
    containers: list.map((c, i) => containerOf(obj(c, `containers[${i}]`))),
  };
}

function agentOf(a: Raw): AgentInfo {
  const out: AgentInfo = { version: str(a.version, SHORT_MAX), startedAt: time(a.startedAt), instance: str(a.instance, SHORT_MAX) };
  // Absent from agents without a keeper, and from agents older than the field.
  if (a.keeper !== undefined && a.keeper !== null) out.keeper = keeperOf(obj(a.keeper, 'agent.keeper'));
  return out;
}

function keeperOf(k: Raw): KeeperState {
  return {
    connected: k.connected === true,
    agentRestarts: int(k.agentRestarts ?? 0, 'agent.keeper.agentRestarts'),
    adoptedFds: int(k.adoptedFds ?? 0, 'agent.keeper.adoptedFds'),
    storeLost: k.storeLost === true,
    reseeds: int(k.reseeds ?? 0, 'agent.keeper.reseeds'),
    unmirrored: int(k.unmirrored ?? 0, 'agent.keeper.unmirrored'),
  };
}

function containerOf(c: Raw): ContainerState {
  const groups = Array.isArray(c.fdGroups) ? c.fdGroups.slice(0, STATUS_FD_GROUPS_MAX) : [];
  const wd = obj(c.watchdog ?? {}, 'watchdog');
  const listen = Array.isArray(c.listen) ? c.listen.slice(0, LISTEN_MAX) : [];
  const state = str(c.state, SHORT_MAX);
  return {
    name: dnsLabel(c.name),
    state: (PHASES.has(state) ? state : 'unknown') as ContainerState['state'],
    ready: c.ready === true,
    readyReason: str(c.readyReason ?? '', SHORT_MAX),
    live: c.live === true,
    liveReason: str(c.liveReason ?? '', SHORT_MAX),
    stored: int(c.stored, 'stored'),
    max: int(c.max, 'max'),
    fdGroups: groups.map((g) => groupOf(obj(g, 'fdGroups[]'))),
    fdGroupsOmitted: int(c.fdGroupsOmitted ?? 0, 'fdGroupsOmitted') + (Array.isArray(c.fdGroups) ? Math.max(0, c.fdGroups.length - STATUS_FD_GROUPS_MAX) : 0),
    restores: int(c.restores ?? 0, 'restores'),
    restoreFailures: int(c.restoreFailures ?? 0, 'restoreFailures'),
    starts: int(c.starts ?? 0, 'starts'),
    lastRestore: opt(c.lastRestore, (v) => {
      const lr = obj(v, 'lastRestore');
      return { at: time(lr.at), fds: int(lr.fds, 'lastRestore.fds') };
    }),
    overLimit: int(c.overLimit ?? 0, 'overLimit'),
    status: opt(c.status, (v) => str(v, STATUS_TEXT_MAX)),
    errno: opt(c.errno, (v) => int(v, 'errno')),
    watchdog: {
      sec: num(wd.sec ?? 0),
      deadline: opt(wd.deadline, time),
      failures: int(wd.failures ?? 0, 'watchdog.failures'),
      startTimeouts: int(wd.startTimeouts ?? 0, 'watchdog.startTimeouts'),
    },
    listen: listen.map((l) => {
      const o = obj(l, 'listen[]');
      return { name: str(o.name, NAME_MAX), kind: str(o.kind, SHORT_MAX) };
    }),
  };
}

function groupOf(g: Raw): FdGroup {
  return { name: str(g.name, NAME_MAX), type: str(g.type, SHORT_MAX), count: int(g.count, 'fdGroups[].count') };
}

function policyOf(p: Raw): { name: string; generation: number } {
  return { name: str(p.name, 253), generation: int(p.generation, 'config.policy.generation') };
}

function errorOf(e: Raw): { message: string; hash: string; at: string } {
  return { message: str(e.message, 1024), hash: hex(e.hash), at: time(e.at) };
}

/** null for null or absent, else f(v). */
function opt<T>(v: unknown, f: (v: unknown) => T): T | null {
  return v === null || v === undefined ? null : f(v);
}

function fail(why: string): never {
  throw new StatusError(`bad status: ${why}`);
}

function obj(v: unknown, where: string): Raw {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Raw) : fail(`${where}: an object`);
}

/** A string cut to max UTF-16 units (on a code point boundary), control characters replaced. */
function str(v: unknown, max: number): string {
  if (typeof v !== 'string') return fail('a string expected');
  // eslint-disable-next-line no-control-regex
  const clean = v.replace(/[\u0000-\u001f\u007f]/g, '?');
  if (clean.length <= max) return clean;
  const cutAt = /[\uD800-\uDBFF]/.test(clean[max - 1] ?? '') ? max - 1 : max;
  return clean.slice(0, cutAt);
}

function int(v: unknown, where: string): number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= -(2 ** 31) && v < 2 ** 53 ? v : fail(`${where}: an integer`);
}

function num(v: unknown): number {
  return typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : fail('a number >= 0 expected');
}

function time(v: unknown): string {
  const s = str(v, 40);
  return Number.isNaN(Date.parse(s)) ? fail('an RFC 3339 time expected') : new Date(s).toISOString();
}

function hex(v: unknown): string {
  const s = str(v, 64);
  return /^[0-9a-f]{64}$/.test(s) ? s : fail('a sha256 hex digest expected');
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
function dnsLabel(v: unknown): string {
  const s = str(v, 63);
  return DNS1123_LABEL.test(s) ? s : fail('container name: a DNS-1123 label');
}
