/**
 * An FdStore's status from what its agent said (AgentStatus, already sanitized), the
 * policy the operator resolved, and the previous status. Pure: the clock is passed in.
 *
 * Conditions:
 *   Ready         every enrolled container is ready (its /readyz would answer 200);
 *                 Unknown while the agent cannot be reached.
 *   ConfigApplied the agent runs the config file rendered from the winning policy
 *                 (same sha256); False/Pending while the kubelet has not projected it
 *                 yet (up to a minute or two), False/Invalid when the agent refused it.
 *   StoreLost     the agent restarted (new instance) and the fds its store held are
 *                 gone: its keeper says so (KeeperLost: the keeper restarted too), or,
 *                 without a keeper, the store went to 0 (AgentRestarted); back to
 *                 False once the apps have stored fds again.
 */
import { createHash } from 'node:crypto';
import type { AgentStatus } from '../../status/types.js';
import type { Condition, FdStoreStatus } from '../types.js';
import { cut, findCondition, setCondition } from './conditions.js';

export interface StatusInput {
  /** The agent's status; null when it could not be reached (unreachable says why). */
  agent: AgentStatus | null;
  unreachable: string | null;
  prev: FdStoreStatus | undefined;
  /** The winning policy and the annotation text rendered from it (null: none). */
  policy: { name: string; generation: number } | null;
  /** Policies that select the pod too but lost (best first). */
  otherPolicies: string[];
  configText: string | null;
  nowIso: string;
}

/** The CRD's bound on status.otherPolicies. */
export const OTHER_POLICIES_MAX = 16;

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

export function buildStatus(i: StatusInput): FdStoreStatus {
  const a = i.agent ?? agentOf(i.prev);
  const containers = i.agent ? i.agent.containers : (i.prev?.containers ?? []);
  let conditions: Condition[] = i.prev?.conditions ?? [];
  conditions = setCondition(conditions, readyCondition(i), i.nowIso);
  conditions = setCondition(conditions, configCondition(i), i.nowIso);
  conditions = setCondition(conditions, storeLostCondition(i), i.nowIso);
  const ready = containers.filter((c) => c.ready).length;
  return {
    readySummary: `${ready}/${containers.length}`,
    stored: containers.reduce((n, c) => n + c.stored, 0),
    restores: containers.reduce((n, c) => n + c.restores, 0),
    policy: i.policy,
    ...(i.otherPolicies.length > 0 ? { otherPolicies: i.otherPolicies.slice(0, OTHER_POLICIES_MAX) } : {}),
    ...(a ? { agent: a.agent, config: { hash: a.config.hash, loadedAt: a.config.loadedAt, error: a.config.error } } : {}),
    containers,
    conditions,
  };
}

/** The previous status's agent parts, kept while the agent is unreachable. */
function agentOf(prev: FdStoreStatus | undefined): Pick<AgentStatus, 'agent' | 'config'> | null {
  return prev?.agent && prev.config ? { agent: prev.agent, config: { ...prev.config, policy: prev.policy ?? null, reloads: 0, rejected: 0 } } : null;
}

function readyCondition(i: StatusInput): Omit<Condition, 'lastTransitionTime'> {
  if (i.agent === null) return { type: 'Ready', status: 'Unknown', reason: 'AgentUnreachable', message: cut(i.unreachable ?? 'no status from the agent yet') };
  const notReady = i.agent.containers.filter((c) => !c.ready);
  if (i.agent.containers.length === 0) return { type: 'Ready', status: 'False', reason: 'NoContainers', message: 'the agent serves no container' };
  if (notReady.length === 0) return { type: 'Ready', status: 'True', reason: 'AllReady', message: `${i.agent.containers.length} container(s) ready` };
  const why = notReady.map((c) => `${c.name}: ${c.state}, ${c.readyReason}`).join('; ');
  return { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: cut(why) };
}

/** The agent's hash of its config file when it runs `text` (an absent annotation projects an empty file). */
export function configMatches(agentHash: string | null, text: string | null): boolean {
  if (text === null) return agentHash === null || agentHash === sha256('');
  return agentHash === sha256(text);
}

function configCondition(i: StatusInput): Omit<Condition, 'lastTransitionTime'> {
  const base = { type: 'ConfigApplied' };
  if (i.agent === null) return { ...base, status: 'Unknown', reason: 'AgentUnreachable', message: cut(i.unreachable ?? 'no status from the agent yet') };
  const want = i.configText === null ? null : sha256(i.configText);
  const err = i.agent.config.error;
  if (err && want !== null && err.hash === want) return { ...base, status: 'False', reason: 'Invalid', message: cut(`the agent refused the config: ${err.message}`) };
  if (configMatches(i.agent.config.hash, i.configText)) {
    const what = i.policy ? `policy ${i.policy.name} generation ${i.policy.generation}` : 'no policy (the agent runs on its flags)';
    return { ...base, status: 'True', reason: i.policy ? 'Applied' : 'NoPolicy', message: `the agent runs ${what}` };
  }
  return { ...base, status: 'False', reason: 'Pending', message: 'waiting for the kubelet to project the pod annotation into the sidecar (up to a minute or two)' };
}

/** Condition messages are never empty: this API server reads an empty string in a custom resource as null. */
const NO_LOSS = 'no agent restart has lost stored fds';

function storeLostCondition(i: StatusInput): Omit<Condition, 'lastTransitionTime'> {
  const base = { type: 'StoreLost' };
  const prevLost = findCondition(i.prev?.conditions, 'StoreLost');
  if (i.agent === null) return prevLost ? { ...prevLost } : { ...base, status: 'False', reason: 'NoRestart', message: NO_LOSS };
  const total = i.agent.containers.reduce((n, c) => n + c.stored, 0);
  const lost = lossAtRestart(i, total);
  if (lost) return { ...base, status: 'True', ...lost };
  if (prevLost?.status === 'True' && total === 0) return { ...prevLost };
  if (prevLost?.status === 'True') return { ...base, status: 'False', reason: 'Restored', message: 'the apps stored fds again since the agent restarted' };
  return { ...base, status: 'False', reason: 'NoRestart', message: NO_LOSS };
}

/**
 * A loss this status shows for the first time: the agent restarted (a new instance)
 * and its keeper says the stores were lost (the keeper held nothing for it although
 * an earlier agent served the pod), or, without a keeper, a store went to 0.
 */
function lossAtRestart(i: StatusInput, total: number): { reason: string; message: string } | null {
  const prevInstance = i.prev?.agent?.instance;
  const a = i.agent!.agent;
  if (prevInstance === undefined || prevInstance === a.instance) return null;
  if (a.keeper?.storeLost === true) return { reason: 'KeeperLost', message: cut(`the agent restarted at ${a.startedAt} and its keeper had restarted too: the stores were lost`) };
  if ((i.prev?.stored ?? 0) > 0 && total === 0) return { reason: 'AgentRestarted', message: cut(`the agent restarted at ${a.startedAt}: the ${i.prev?.stored} stored fd(s) it held are gone`) };
  return null;
}

/**
 * The status as the API server stores it: the CRD has no nullable fields (1.20 drops
 * nulls) and this server refuses empty strings in custom resources, so both are left
 * out, keys sorted so the comparison below is stable.
 */
export function forApi<T>(v: T): T {
  if (Array.isArray(v)) return v.map(forApi) as T;
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (x === null || x === undefined || x === '') continue;
      out[k] = forApi(x);
    }
    return out as T;
  }
  return v;
}

/**
 * The JSON merge patch (RFC 7386) that turns `prev` into `next`: fields gone from
 * next are sent as null (merge patch deletes them; omitting them would keep them,
 * e.g. a policy that no longer applies), lists are replaced whole.
 */
export function mergePatch(prev: unknown, next: unknown): unknown {
  if (!isObject(prev) || !isObject(next)) return next;
  const out: Record<string, unknown> = {};
  for (const k of Object.keys(prev)) if (!(k in next)) out[k] = null;
  for (const [k, v] of Object.entries(next)) out[k] = k in prev ? mergePatch(prev[k], v) : v;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** What a write compares: the status without the fields that move on their own (watchdog deadlines, lastUpdate). */
export function comparable(s: FdStoreStatus): string {
  const containers = s.containers?.map((c) => ({ ...c, watchdog: { ...c.watchdog, deadline: null } }));
  return JSON.stringify({ ...s, containers, lastUpdate: undefined, observedGeneration: undefined });
}
