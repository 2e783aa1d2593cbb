/** Pods and policies for the injector's tests: shapes as the API server sends them in an AdmissionReview. */
import type { FdStorePolicy } from '../../src/operator/types.js';
import { defaultSettings } from '../../src/inject/settings.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Obj = Record<string, any>;

export const SETTINGS = defaultSettings('localhost/fdstore:0.1.0');
export const V130 = { major: 1, minor: 30 };
export const V120 = { major: 1, minor: 20 };

const hardened = { runAsUser: 10001, runAsGroup: 10001, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };

export function app(name: string, over: Obj = {}): Obj {
  return { name, image: 'localhost/webapp:1.0', command: [`/app/${name}`], args: ['--port', '8080'], securityContext: hardened, ...over };
}

export function podOf(containers: Obj[], over: { labels?: Record<string, string>; annotations?: Record<string, string>; spec?: Obj; name?: string } = {}): Obj {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { ...(over.name === undefined ? { generateName: 'web-7d9f-' } : { name: over.name }), labels: { app: 'web', ...over.labels }, ...(over.annotations ? { annotations: over.annotations } : {}) },
    spec: { containers, ...over.spec },
  };
}

export function injecting(name = 'inject-web', spec: Partial<FdStorePolicy['spec']> = {}, ns = 'shop'): FdStorePolicy {
  return {
    apiVersion: 'fdstore.dev/v1alpha1',
    kind: 'FdStorePolicy',
    metadata: { name, namespace: ns, generation: 3, creationTimestamp: '2026-12-01T10:00:00Z' },
    spec: { selector: { matchLabels: { app: 'web' } }, injection: { enabled: true }, defaults: { fileDescriptorStoreMax: 64 }, ...spec },
  };
}
