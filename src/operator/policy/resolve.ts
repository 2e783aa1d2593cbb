/**
 * Which FdStorePolicy configures a pod. Pure.
 *
 * The rule (docs/crds.md): among the policies in the pod's namespace whose selector
 * matches its labels, the highest `spec.priority` (default 0) wins; ties go to the
 * oldest policy (creationTimestamp), then to the lexically smallest name. Every
 * other match is a loser, reported in both policies' status and on the FdStore.
 * Deterministic on any replica, and stable: creating a newer policy with equal
 * priority never takes pods away from the one that already had them.
 */
import type { FdStorePolicy, Pod } from '../types.js';
import { matches } from './selector.js';

export interface Resolution {
  winner: FdStorePolicy | null;
  losers: FdStorePolicy[];
}

export function resolvePolicy(pod: Pod, policies: readonly FdStorePolicy[]): Resolution {
  const ns = pod.metadata.namespace;
  const hits = policies.filter((p) => p.metadata.namespace === ns && !p.metadata.deletionTimestamp && matches(p.spec?.selector, pod.metadata.labels));
  hits.sort(compare);
  return { winner: hits[0] ?? null, losers: hits.slice(1) };
}

/** Winner first. */
export function compare(a: FdStorePolicy, b: FdStorePolicy): number {
  const pa = a.spec?.priority ?? 0;
  const pb = b.spec?.priority ?? 0;
  if (pa !== pb) return pb - pa;
  const ta = Date.parse(a.metadata.creationTimestamp ?? '') || 0;
  const tb = Date.parse(b.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) return ta - tb;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}
