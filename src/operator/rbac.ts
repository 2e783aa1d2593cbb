/**
 * Every Kubernetes API request the operator makes, as RBAC sees it: the one source
 * of truth for its permissions (issue 8: "the exact verbs the operator needs").
 *
 * Each request names its entry here: the writes in api.ts and the Lease calls in
 * kube/lease.ts pass it to their call wrapper (which labels the request metric and
 * the failure log with it), and the two watches are built from theirs
 * (kube/source.ts). test/crd/rbac.test.ts reads src/ and proves that no client-node
 * API method is called without an entry that matches it, that every watch is built
 * from its entries, that every entry is used, and that the chart's ClusterRole and
 * Role (charts/fdstore/files/operator-rbac.yaml) grant exactly these: nothing
 * missing, nothing extra.
 */
import { GROUP, POLICY_PLURAL, STORE_PLURAL } from './types.js';

export type Verb = 'get' | 'list' | 'watch' | 'create' | 'update' | 'patch' | 'delete';

export interface ApiCall {
  /** The API group ('' for the core group). */
  readonly group: string;
  /** The resource as RBAC names it: the plural, with `/status` for the status subresource. */
  readonly resource: string;
  readonly verb: Verb;
  /**
   * Which role grants it: `cluster` (the ClusterRole: pods and policies anywhere) or
   * `lease` (the Role in the operator's own namespace: leader election only).
   */
  readonly role: 'cluster' | 'lease';
}

const cluster = (group: string, resource: string, verb: Verb): ApiCall => ({ group, resource, verb, role: 'cluster' });
const lease = (verb: Verb): ApiCall => ({ group: 'coordination.k8s.io', resource: 'leases', verb, role: 'lease' });

export const API_CALLS = {
  /** The enrolled-pod watch (a label-selected list, then a watch from its resourceVersion). */
  listPods: cluster('', 'pods', 'list'),
  watchPods: cluster('', 'pods', 'watch'),
  /** The `fdstore.dev/config` annotation (a merge patch of metadata only). */
  patchPod: cluster('', 'pods', 'patch'),
  listPolicies: cluster(GROUP, POLICY_PLURAL, 'list'),
  watchPolicies: cluster(GROUP, POLICY_PLURAL, 'watch'),
  /** A policy's `Accepted`, `pods` and `conflicts`: policies are otherwise only read. */
  patchPolicyStatus: cluster(GROUP, `${POLICY_PLURAL}/status`, 'patch'),
  /** Does the pod's FdStore exist yet (once per pod, before the first status write)? */
  getFdStore: cluster(GROUP, STORE_PLURAL, 'get'),
  /** One per enrolled pod, owned by it: the garbage collector deletes it, never the operator. */
  createFdStore: cluster(GROUP, STORE_PLURAL, 'create'),
  patchFdStoreStatus: cluster(GROUP, `${STORE_PLURAL}/status`, 'patch'),
  /** Events on pods; each one is new (a repeat is a new Event saying how many were held back). */
  createEvent: cluster('', 'events', 'create'),
  getLease: lease('get'),
  createLease: lease('create'),
  /** Renew, take over and release: always a replace carrying the resourceVersion last seen. */
  updateLease: lease('update'),
} as const satisfies Record<string, ApiCall>;

export type ApiCallName = keyof typeof API_CALLS;

/**
 * Requests outside resources. `GET /version` (the injector picks native or classic
 * sidecars from it) needs no rule in the chart: Kubernetes' default ClusterRole
 * `system:public-info-viewer` grants it to every authenticated user.
 */
export const NON_RESOURCE_CALLS = {
  getVersion: { url: '/version', verb: 'get', method: 'VersionApi.getCode' },
} as const;
