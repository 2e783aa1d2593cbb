/**
 * Object name rules shared by the CRDs: what metadata.name may be, and the names one
 * object records of another (a pod's, a policy's).
 */
import type { Typed } from './wire.js';

/** Pod names are DNS-1123 subdomains; an FdStore is named after its pod. */
export const POD_NAME_MAX = 253;
export const DNS1123_SUBDOMAIN_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$';
/**
 * Policy names are DNS-1123 labels (at most 63), stricter than Kubernetes needs, so
 * that a policy's name also fits a label value (e.g. for `kubectl get pods -l`).
 */
export const POLICY_NAME_MAX = 63;
export const DNS1123_LABEL_PATTERN = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

export function podNameSchema(description: string): Typed<'string'> {
  return { type: 'string', description, minLength: 1, maxLength: POD_NAME_MAX, pattern: DNS1123_SUBDOMAIN_PATTERN };
}

export function policyNameSchema(description: string): Typed<'string'> {
  return { type: 'string', description, minLength: 1, maxLength: POLICY_NAME_MAX, pattern: DNS1123_LABEL_PATTERN };
}
