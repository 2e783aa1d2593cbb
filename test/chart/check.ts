/**
 * Checks every chart test applies to every render: each object valid for Kubernetes
 * (kubernetes-models, or the monitors' schema), no unknown field anywhere, the
 * release's labels, and hardened pods.
 */
import { expect } from 'vitest';
import type { Obj } from './helm.js';
import { monitorErrors } from './monitors.js';
import { modelOf, unknownFields } from './strict.js';

const CLUSTER_SCOPED = new Set(['CustomResourceDefinition', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);
export const AGENT_UID = 64919;

/** Kubernetes-valid and closed: throws (with every problem) when not. namespace null: objects of a user's chart, which leave it to helm. */
export function expectValid(objs: Obj[], namespace: string | null = 'fds-system'): void {
  const problems: string[] = [];
  for (const o of objs) {
    const where = `${o.kind}/${o.metadata?.name}`;
    if (o.kind === 'PodMonitor' || o.kind === 'ServiceMonitor') {
      problems.push(...monitorErrors(o).map((p) => `${where}: ${p}`));
    } else {
      try {
        modelOf(o).validate();
      } catch (e) {
        problems.push(`${where}: ${(e as Error).message}`);
      }
      problems.push(...unknownFields(o).map((p) => `${where}: ${p}`));
    }
    const labels = o.metadata.labels ?? {};
    for (const l of ['app.kubernetes.io/name', 'app.kubernetes.io/instance', 'app.kubernetes.io/managed-by', 'app.kubernetes.io/part-of', 'helm.sh/chart']) {
      if (!labels[l]) problems.push(`${where}: no label ${l}`);
    }
    if (namespace === null) continue;
    if (CLUSTER_SCOPED.has(o.kind) !== (o.metadata.namespace === undefined)) problems.push(`${where}: namespace ${o.metadata.namespace}`);
    else if (!CLUSTER_SCOPED.has(o.kind) && o.kind !== 'ConfigMap' && o.metadata.namespace !== namespace) problems.push(`${where}: namespace ${o.metadata.namespace}, not ${namespace}`);
  }
  expect(problems).toEqual([]);
}

/** Every container (init or not) of a pod spec, with where it is. */
export function containersOf(pod: Obj): { list: 'initContainers' | 'containers'; c: Obj }[] {
  return [
    ...(pod.initContainers ?? []).map((c: Obj) => ({ list: 'initContainers' as const, c })),
    ...(pod.containers ?? []).map((c: Obj) => ({ list: 'containers' as const, c })),
  ];
}

/** Pod specs of the Deployments among objs. */
export const podSpecs = (objs: Obj[]): Obj[] => objs.filter((o) => o.kind === 'Deployment').map((d) => d.spec.template.spec);

/** Non-root, no privilege escalation, no capabilities, read-only root, seccomp RuntimeDefault: every container. */
export function expectHardened(pod: Obj): void {
  expect(pod.securityContext?.runAsNonRoot).toBe(true);
  for (const { c } of containersOf(pod)) {
    const sc = c.securityContext;
    expect([c.name, sc]).toEqual([c.name, expect.objectContaining({
      runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] }, seccompProfile: { type: 'RuntimeDefault' },
    })]);
    expect(sc.runAsUser).toBeGreaterThan(0);
    expect(sc.runAsUser).not.toBe(65532);
    expect(sc.runAsGroup).toBe(sc.runAsUser);
  }
}
