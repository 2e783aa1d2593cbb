/**
 * The writes the operator makes, over client-node 1.4: every call bounded by a
 * timeout (1.4 has none for ordinary calls), every patch with an explicit content
 * type (1.4 defaults to JSON Patch and a merge body fails), every request counted.
 */
import { PatchStrategy, setHeaderMiddleware, type ConfigurationOptions, type CoreV1Api, type CustomObjectsApi } from '@kubernetes/client-node';
import { httpStatus, REQUEST_TIMEOUT_MS, withTimeout, type KubeClients } from './kube/client.js';
import { API_CALLS, type ApiCall } from './rbac.js';
import { API_VERSION, VERSION, type FdStore, type FdStorePolicy, type Pod, type PolicyStatus } from './types.js';
import type { PodEvent } from './status/events.js';

/** The `source.component` and manager name on what the operator writes. */
export const COMPONENT = 'fdstore-operator';

export interface ApiCounter {
  (verb: string, resource: string, code: number | 'error'): void;
}

/** What the controller needs from the API server (a seam for the bench's simulated agents only). */
export interface OperatorApi {
  patchPodAnnotation(ns: string, name: string, key: string, value: string | null): Promise<void>;
  getFdStore(ns: string, name: string): Promise<FdStore | null>;
  createFdStore(pod: Pod): Promise<void>;
  /** status: a merge patch of the status (fields set to null are deleted). */
  patchFdStoreStatus(ns: string, name: string, status: unknown): Promise<void>;
  patchPolicyStatus(ns: string, name: string, status: PolicyStatus): Promise<void>;
  createEvent(pod: Pod, e: PodEvent, nowIso: string): Promise<void>;
}

/** HTTP status of a client-node error (ApiException.code), or 'error' for network failures and timeouts. */
export function statusOf(e: unknown): number | 'error' {
  return httpStatus(e) ?? 'error';
}

/** With a patch body's content type (client-node 1.4 would send JSON Patch). */
function withType(opts: ConfigurationOptions, contentType: string | undefined): ConfigurationOptions {
  if (!contentType) return opts;
  return { ...opts, middleware: [...(opts.middleware ?? []), setHeaderMiddleware('Content-Type', contentType)], middlewareMergeStrategy: 'append' };
}

/** A custom-object call's group, version and plural, from its rbac.ts entry (so the two cannot disagree). */
function custom(c: ApiCall): { group: string; version: string; plural: string } {
  return { group: c.group, version: VERSION, plural: c.resource.split('/')[0]! };
}

export class KubeApi implements OperatorApi {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(clients: KubeClients, private readonly count: ApiCounter = () => {}) {
    this.core = clients.core;
    this.custom = clients.custom;
  }

  /**
   * One call, declared as its entry in rbac.ts (the chart's role grants exactly those),
   * bounded by REQUEST_TIMEOUT_MS (client-node 1.4 has no timeout of its own), counted.
   */
  private async call<T>(c: ApiCall, fn: (opts: ConfigurationOptions) => Promise<T>, contentType?: string): Promise<T> {
    try {
      const r = await withTimeout(REQUEST_TIMEOUT_MS, undefined, (opts) => fn(withType(opts, contentType)));
      this.count(c.verb, c.resource, 200);
      return r;
    } catch (e) {
      this.count(c.verb, c.resource, statusOf(e));
      throw e;
    }
  }

  async patchPodAnnotation(ns: string, name: string, key: string, value: string | null): Promise<void> {
    const body = { metadata: { annotations: { [key]: value } } };
    await this.call(API_CALLS.patchPod, (o) => this.core.patchNamespacedPod({ namespace: ns, name, body }, o), PatchStrategy.MergePatch);
  }

  async getFdStore(ns: string, name: string): Promise<FdStore | null> {
    try {
      return (await this.call(API_CALLS.getFdStore, (o) =>
        this.custom.getNamespacedCustomObject({ ...custom(API_CALLS.getFdStore), namespace: ns, name }, o))) as FdStore;
    } catch (e) {
      if (statusOf(e) === 404) return null;
      throw e;
    }
  }

  /** Named after the pod and owned by it, so the garbage collector deletes it with the pod. 409 (exists) is success. */
  async createFdStore(pod: Pod): Promise<void> {
    const body: FdStore = {
      apiVersion: API_VERSION,
      kind: 'FdStore',
      metadata: {
        name: pod.metadata.name,
        namespace: pod.metadata.namespace,
        labels: { 'app.kubernetes.io/managed-by': COMPONENT },
        // No blockOwnerDeletion: setting it needs delete rights on pods' finalizers.
        ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid ?? '', controller: true }],
      },
    };
    try {
      await this.call(API_CALLS.createFdStore, (o) =>
        this.custom.createNamespacedCustomObject({ ...custom(API_CALLS.createFdStore), namespace: pod.metadata.namespace, body }, o));
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
    }
  }

  async patchFdStoreStatus(ns: string, name: string, status: unknown): Promise<void> {
    // Merge patch replaces lists whole; removed fields come as null (status/fdstore.ts mergePatch).
    await this.call(API_CALLS.patchFdStoreStatus, (o) =>
      this.custom.patchNamespacedCustomObjectStatus({ ...custom(API_CALLS.patchFdStoreStatus), namespace: ns, name, body: { status } }, o), PatchStrategy.MergePatch);
  }

  async patchPolicyStatus(ns: string, name: string, status: PolicyStatus): Promise<void> {
    await this.call(API_CALLS.patchPolicyStatus, (o) =>
      this.custom.patchNamespacedCustomObjectStatus({ ...custom(API_CALLS.patchPolicyStatus), namespace: ns, name, body: { status } }, o), PatchStrategy.MergePatch);
  }

  async createEvent(pod: Pod, e: PodEvent, nowIso: string): Promise<void> {
    const ns = pod.metadata.namespace;
    await this.call(API_CALLS.createEvent, (o) =>
      this.core.createNamespacedEvent({
        namespace: ns,
        body: {
          metadata: { generateName: `${pod.metadata.name}.fdstore.`, namespace: ns },
          involvedObject: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, namespace: ns, uid: pod.metadata.uid },
          type: e.type,
          reason: e.reason,
          message: e.message,
          source: { component: COMPONENT },
          firstTimestamp: new Date(nowIso),
          lastTimestamp: new Date(nowIso),
          count: 1,
          reportingComponent: COMPONENT,
          reportingInstance: process.env.POD_NAME ?? COMPONENT,
        },
      }, o));
  }
}

export type { FdStorePolicy };
