/**
 * The API objects the operator reads and writes, as plain JSON shapes (the
 * generated CRDs in crds/ are the schema; these types are what the code touches).
 * Only the fields the operator uses are typed; the rest passes through untouched.
 */
import type { AgentStatus, ContainerState } from '../status/types.js';

export const GROUP = 'fdstore.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const POLICY_PLURAL = 'fdstorepolicies';
export const STORE_PLURAL = 'fdstores';

/** Set on every pod that carries the sidecar (chart template, injector): the operator's pod watch selects it. */
export const ENROLLED_LABEL = 'fdstore.dev/enrolled';
export const ENROLLED_SELECTOR = `${ENROLLED_LABEL}=true`;
/** The resolved agent configuration, projected into the sidecar by a downwardAPI volume. */
export const CONFIG_ANNOTATION = 'fdstore.dev/config';
/** The agent's HTTP port if not the container port named `fdstore-http`, else DEFAULT_AGENT_PORT. */
export const PORT_ANNOTATION = 'fdstore.dev/agent-port';
export const AGENT_PORT_NAME = 'fdstore-http';
export const DEFAULT_AGENT_PORT = 9721;

export interface ObjectMeta {
  name: string;
  namespace: string;
  uid?: string;
  generation?: number;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string;
  ownerReferences?: OwnerReference[];
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }[];
}

/** Per-container settings as the CRD carries them (the agent's config file fields). */
export type Settings = Record<string, unknown>;

export interface FdStorePolicy {
  apiVersion: string;
  kind: 'FdStorePolicy';
  metadata: ObjectMeta;
  spec: {
    selector?: LabelSelector;
    priority?: number;
    defaults?: Settings;
    containers?: ({ name: string } & Settings)[];
    injection?: { enabled?: boolean; containers?: string[]; probes?: boolean };
  };
  status?: PolicyStatus;
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  lastTransitionTime: string;
  observedGeneration?: number;
}

export interface PolicyStatus {
  observedGeneration?: number;
  conditions?: Condition[];
  pods?: number;
  conflicts?: { pod: string; winner: string }[];
  conflictsOmitted?: number;
}

export interface FdStoreStatus {
  observedGeneration?: number;
  readySummary?: string;
  /** Fds stored, all containers together. */
  stored?: number;
  restores?: number;
  policy?: { name: string; generation: number } | null;
  otherPolicies?: string[];
  agent?: AgentStatus['agent'];
  config?: { hash: string | null; loadedAt: string; error: AgentStatus['config']['error'] };
  containers?: ContainerState[];
  conditions?: Condition[];
  lastUpdate?: string;
}

export interface FdStore {
  apiVersion: string;
  kind: 'FdStore';
  metadata: ObjectMeta;
  status?: FdStoreStatus;
}

export interface PodContainer {
  name: string;
  ports?: { name?: string; containerPort: number }[];
}

/** The parts of a Pod the operator reads. */
export interface Pod {
  metadata: ObjectMeta;
  spec?: { containers?: PodContainer[]; initContainers?: PodContainer[] };
  status?: { podIP?: string; phase?: string };
}

export const podKey = (o: { metadata: { namespace: string; name: string } }): string => `${o.metadata.namespace}/${o.metadata.name}`;
