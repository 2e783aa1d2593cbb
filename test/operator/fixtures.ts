/** Objects as the API server returns them, for the operator's pure tests. */
import { STATUS_SCHEMA, type AgentStatus, type ContainerState } from '../../src/status/types.js';
import type { FdStorePolicy, Pod } from '../../src/operator/types.js';

export function pod(name: string, labels: Record<string, string> = {}, ns = 'default', extra: Partial<Pod> = {}): Pod {
  return { metadata: { name, namespace: ns, uid: `uid-${name}`, labels: { 'fdstore.dev/enrolled': 'true', ...labels } }, status: { podIP: '10.244.0.9' }, ...extra };
}

export function policy(name: string, spec: FdStorePolicy['spec'], opts: { ns?: string; created?: string; generation?: number } = {}): FdStorePolicy {
  return {
    apiVersion: 'fdstore.dev/v1alpha1',
    kind: 'FdStorePolicy',
    metadata: { name, namespace: opts.ns ?? 'default', generation: opts.generation ?? 1, creationTimestamp: opts.created ?? '2026-12-01T10:00:00Z' },
    spec,
  };
}

export function container(name: string, over: Partial<ContainerState> = {}): ContainerState {
  return {
    name, state: 'ready', ready: true, readyReason: 'READY=1', live: true, liveReason: 'alive',
    stored: 1, max: 4096, fdGroups: [{ name: 'http', type: 'tcp-listen', count: 1 }], fdGroupsOmitted: 0,
    restores: 0, restoreFailures: 0, starts: 1, lastRestore: null, overLimit: 0, status: null, errno: null,
    watchdog: { sec: 0, deadline: null, failures: 0, startTimeouts: 0 }, listen: [], ...over,
  };
}

export function agentStatus(containers: ContainerState[], over: Partial<AgentStatus> = {}): AgentStatus {
  return {
    schema: STATUS_SCHEMA,
    generation: 5,
    agent: { version: '0.1.0', startedAt: '2026-12-01T10:00:00.000Z', instance: 'inst-1' },
    config: { policy: null, hash: null, loadedAt: '2026-12-01T10:00:00.000Z', error: null, reloads: 0, rejected: 0 },
    containers,
    ...over,
  };
}
