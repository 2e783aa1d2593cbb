/**
 * What `fdstore operator` runs with: the flags as parsed by cli/operator.ts. Types
 * only, defined by the operator that takes them (cli/ composes, nothing imports it).
 */
import type { ListenAddress } from '../http/server.js';

export interface OperatorOptions {
  kubeconfig: string | undefined;
  namespace: string | undefined;
  leaseNamespace: string;
  leaseName: string;
  identity: string;
  http: ListenAddress | null;
  /** The injector's webhook (docs/injector.md); null: not served. */
  webhook: WebhookOptions | null;
}

export interface WebhookOptions {
  listen: ListenAddress;
  certFile: string;
  keyFile: string;
  mode: 'auto' | 'native' | 'classic';
  /** --inject-sidecar's JSON (the chart's sidecar values); null: the chart's defaults. */
  sidecar: string | null;
  /** The agent image when --inject-sidecar does not name one. */
  image: string;
}
