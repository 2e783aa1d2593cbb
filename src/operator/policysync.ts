/**
 * FdStorePolicy status: how many enrolled pods it configures, the pods where more
 * than one policy matched (with the winner's name, in every matching policy's
 * status), and `Accepted`: whether the agent's own config validation takes the
 * policy (the API server's schema cannot check everything the agent does, e.g. a
 * listen address). Pure; the controller writes it when it changed.
 */
import { canonicalJson, renderConfig } from './policy/render.js';
import { resolvePolicy } from './policy/resolve.js';
import { cut, setCondition } from './status/conditions.js';
import type { FdStorePolicy, Pod, PolicyStatus } from './types.js';

/** Conflicts listed per policy; the rest are counted (etcd objects must stay small). */
export const CONFLICTS_MAX = 50;

export type ConfigCheck = (configText: string) => string | null;

export function policyStatuses(policies: readonly FdStorePolicy[], pods: readonly Pod[], check: ConfigCheck, nowIso: string): Map<FdStorePolicy, PolicyStatus> {
  const won = new Map<FdStorePolicy, number>();
  const conflicts = new Map<FdStorePolicy, { pod: string; winner: string }[]>();
  for (const pod of pods) {
    const { winner, losers } = resolvePolicy(pod, policies);
    if (!winner) continue;
    won.set(winner, (won.get(winner) ?? 0) + 1);
    if (losers.length === 0) continue;
    const entry = { pod: pod.metadata.name, winner: winner.metadata.name };
    for (const p of [winner, ...losers]) {
      const list = conflicts.get(p) ?? [];
      list.push(entry);
      conflicts.set(p, list);
    }
  }
  const out = new Map<FdStorePolicy, PolicyStatus>();
  for (const p of policies) {
    const all = (conflicts.get(p) ?? []).sort((a, b) => (a.pod < b.pod ? -1 : a.pod > b.pod ? 1 : 0));
    const problem = check(renderConfig(p) ?? '');
    const gen = p.metadata.generation ?? 0;
    const accepted = problem === null
      ? { type: 'Accepted', status: 'True' as const, reason: 'Valid', message: 'the agent accepts this configuration', observedGeneration: gen }
      : { type: 'Accepted', status: 'False' as const, reason: 'Invalid', message: cut(problem), observedGeneration: gen };
    out.set(p, {
      observedGeneration: gen,
      conditions: setCondition(p.status?.conditions, accepted, nowIso),
      pods: won.get(p) ?? 0,
      conflicts: all.slice(0, CONFLICTS_MAX),
      conflictsOmitted: Math.max(0, all.length - CONFLICTS_MAX),
    });
  }
  return out;
}

/** Whether a write would change the policy's status (conditions' times kept when unchanged). */
export function sameStatus(a: PolicyStatus | undefined, b: PolicyStatus): boolean {
  return a !== undefined && canonicalJson({ ...a, conflicts: a.conflicts ?? [], conflictsOmitted: a.conflictsOmitted ?? 0 }) === canonicalJson(b);
}
