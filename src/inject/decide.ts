/**
 * Whether a pod is the injector's to change, and with which policy. Pure. Injection
 * is opt-in twice over: a pod is injected only when an FdStorePolicy of its
 * namespace that selects it (and wins, docs/crds.md) has spec.injection.enabled, or
 * when the pod itself is annotated fdstore.dev/inject: "true". Never kube-system,
 * never the operator's own pods, never a pod annotated fdstore.dev/inject: "false".
 */
import { resolvePolicy } from '../operator/policy/resolve.js';
import { ENROLLED_LABEL, type FdStorePolicy } from '../operator/types.js';
import { OUR_CONTAINERS, OUR_VOLUMES } from './pieces.js';

export const INJECT_ANNOTATION = 'fdstore.dev/inject';
/** What the injector did, and which version: canonical JSON (InjectionRecord). */
export const INJECTED_ANNOTATION = 'fdstore.dev/injected';
/** Per-container opt-in for a container without `command`: its image's entrypoint, a JSON list of strings. */
export const ENTRYPOINT_ANNOTATION_PREFIX = 'fdstore.dev/entrypoint.';
export const EXCLUDED_NAMESPACES: readonly string[] = ['kube-system', 'kube-public', 'kube-node-lease'];

/** The operator's pods (the chart's labels): injecting them would make the injector depend on itself. */
export const OPERATOR_LABELS = { 'app.kubernetes.io/part-of': 'fdstore', 'app.kubernetes.io/component': 'operator' } as const;

export interface PodLike {
  metadata?: { name?: string; generateName?: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { containers?: { name: string }[]; initContainers?: { name: string }[]; volumes?: { name: string }[] };
}

export type Decision =
  | { inject: true; policy: FdStorePolicy | null; via: 'policy' | 'annotation' }
  | { inject: false; why: SkipReason; detail: string };

/** A closed set: a metric label. */
export type SkipReason = 'excluded_namespace' | 'operator_pod' | 'opted_out' | 'not_selected' | 'already_injected' | 'already_enrolled' | 'name_clash' | 'no_containers';
export const SKIP_REASONS: readonly SkipReason[] = ['excluded_namespace', 'operator_pod', 'opted_out', 'not_selected', 'already_injected', 'already_enrolled', 'name_clash', 'no_containers'];

export function decide(namespace: string, pod: PodLike, policies: readonly FdStorePolicy[]): Decision {
  const refused = refusal(namespace, pod);
  if (refused !== null) return refused;
  const labels = pod.metadata?.labels ?? {};
  const ann = pod.metadata?.annotations ?? {};
  const { winner } = resolvePolicy(
    { metadata: { name: pod.metadata?.name ?? pod.metadata?.generateName ?? '', namespace, labels } },
    policies,
  );
  if (winner?.spec?.injection?.enabled === true) return { inject: true, policy: winner, via: 'policy' };
  if (ann[INJECT_ANNOTATION] === 'true') return { inject: true, policy: winner, via: 'annotation' };
  return {
    inject: false,
    why: 'not_selected',
    detail: winner ? `policy ${winner.metadata.name} selects it with spec.injection.enabled off` : 'no FdStorePolicy with injection selects it',
  };
}

/** Why the pod is never the injector's, whatever the policies say; null when it may be. */
function refusal(namespace: string, pod: PodLike): Decision | null {
  const labels = pod.metadata?.labels ?? {};
  const ann = pod.metadata?.annotations ?? {};
  if (EXCLUDED_NAMESPACES.includes(namespace)) return { inject: false, why: 'excluded_namespace', detail: `namespace ${namespace} is never injected` };
  if (Object.entries(OPERATOR_LABELS).every(([k, v]) => labels[k] === v)) return { inject: false, why: 'operator_pod', detail: "the fdstore operator's own pod" };
  if (ann[INJECT_ANNOTATION] === 'false') return { inject: false, why: 'opted_out', detail: `${INJECT_ANNOTATION}: "false"` };
  if (ann[INJECTED_ANNOTATION] !== undefined) return { inject: false, why: 'already_injected', detail: `${INJECTED_ANNOTATION} is set` };
  if (labels[ENROLLED_LABEL] === 'true') return { inject: false, why: 'already_enrolled', detail: `${ENROLLED_LABEL}=true: the sidecar comes from the chart's template` };
  const clash = [
    ...[...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])].filter((c) => (OUR_CONTAINERS as readonly string[]).includes(c.name)).map((c) => `container ${c.name}`),
    ...(pod.spec?.volumes ?? []).filter((v) => (OUR_VOLUMES as readonly string[]).includes(v.name)).map((v) => `volume ${v.name}`),
  ];
  if (clash.length > 0) return { inject: false, why: 'name_clash', detail: `the pod already has ${clash.join(', ')}: not injected` };
  if ((pod.spec?.containers ?? []).length === 0) return { inject: false, why: 'no_containers', detail: 'the pod has no containers' };
  return null;
}
