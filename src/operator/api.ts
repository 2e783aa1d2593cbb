/**
 * The writes the operator makes, over client-node 1.4 (the only module of the
 * operator that imports it besides kube/): every call bounded by a timeout (1.4
 * has none for ordinary calls), every patch with an explicit content type (1.4
 * defaults to JSON Patch and a merge body fails), every request counted.
 */
import {
  CoreV1Api, CustomObjectsApi, Observable, PatchStrategy, setHeaderMiddleware,
  type ConfigurationOptions, type KubeConfig, type ObservableMiddleware,
} from '@kubernetes/client-node';
import { API_VERSION, GROUP, POLICY_PLURAL, STORE_PLURAL, VERSION, type FdStore, type FdStorePolicy, type FdStoreStatus, type Pod, type PolicyStatus } from './types.js';
import type { PodEvent } from './status/events.js';

/** Longest any single API call may take; the caller retries with back-off. */
export const API_CALL_TIMEOUT_MS = 15_000;
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
  patchFdStoreStatus(ns: string, name: string, status: FdStoreStatus): Promise<void>;
  patchPolicyStatus(ns: string, name: string, status: PolicyStatus): Promise<void>;
  createEvent(pod: Pod, e: PodEvent, nowIso: string): Promise<void>;
}

function timeoutMiddleware(ms: number): ObservableMiddleware {
  return {
    pre: (ctx) => {
      ctx.setSignal(AbortSignal.timeout(ms));
      return new Observable(Promise.resolve(ctx));
    },
    post: (res) => new Observable(Promise.resolve(res)),
  };
}

function options(contentType?: string): ConfigurationOptions<ObservableMiddleware> {
  const middleware = [timeoutMiddleware(API_CALL_TIMEOUT_MS)];
  if (contentType) middleware.push(setHeaderMiddleware('Content-Type', contentType));
  return { middleware, middlewareMergeStrategy: 'append' };
}

/** HTTP status of a client-node error (ApiException.code), or 'error' for network failures and timeouts. */
export function statusOf(e: unknown): number | 'error' {
  const code = (e as { code?: unknown }).code;
  return typeof code === 'number' ? code : 'error';
}

export class KubeApi implements OperatorApi {
  private readonly core: CoreV1Api;
  private readonly custom: CustomObjectsApi;

  constructor(kc: KubeConfig, private readonly count: ApiCounter = () => {}) {
    this.core = kc.makeApiClient(CoreV1Api);
    this.custom = kc.makeApiClient(CustomObjectsApi);
  }

  private async call<T>(verb: string, resource: string, fn: () => Promise<T>): Promise<T> {
    try {
      const r = await fn();
      this.count(verb, resource, 200);
      return r;
    } catch (e) {
      this.count(verb, resource, statusOf(e));
      throw e;
    }
  }

  async patchPodAnnotation(ns: string, name: string, key: string, value: string | null): Promise<void> {
    const body = { metadata: { annotations: { [key]: value } } };
    await this.call('patch', 'pods', () => this.core.patchNamespacedPod({ namespace: ns, name, body }, options(PatchStrategy.MergePatch)));
  }

  async getFdStore(ns: string, name: string): Promise<FdStore | null> {
    try {
      return (await this.call('get', STORE_PLURAL, () =>
        this.custom.getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: ns, plural: STORE_PLURAL, name }, options()))) as FdStore;
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
      await this.call('create', STORE_PLURAL, () =>
        this.custom.createNamespacedCustomObject({ group: GROUP, version: VERSION, namespace: pod.metadata.namespace, plural: STORE_PLURAL, body }, options()));
    } catch (e) {
      if (statusOf(e) !== 409) throw e;
    }
  }

  async patchFdStoreStatus(ns: string, name: string, status: FdStoreStatus): Promise<void> {
    // Merge patch replaces lists whole: the complete status goes every time (one writer: the leader).
    await this.call('patch', `${STORE_PLURAL}/status`, () =>
      this.custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: ns, plural: STORE_PLURAL, name, body: { status } }, options(PatchStrategy.MergePatch)));
  }

  async patchPolicyStatus(ns: string, name: string, status: PolicyStatus): Promise<void> {
    await this.call('patch', `${POLICY_PLURAL}/status`, () =>
      this.custom.patchNamespacedCustomObjectStatus({ group: GROUP, version: VERSION, namespace: ns, plural: POLICY_PLURAL, name, body: { status } }, options(PatchStrategy.MergePatch)));
  }

  async createEvent(pod: Pod, e: PodEvent, nowIso: string): Promise<void> {
    const ns = pod.metadata.namespace;
    await this.call('create', 'events', () =>
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
      }, options()));
  }
}

export type { FdStorePolicy };
