/**
 * The policy both new steps use: defaults for every container plus two containers
 * with their own settings, like crds/samples/fdstorepolicy-web.yaml (without its
 * `listen:` sockets, which would bind fixed ports on a shared machine). The agent
 * step renders it with the operator's own renderer, so its --config file is the
 * exact text the operator writes into a pod's annotation.
 */
import { renderConfig } from '../../dist/operator/policy/render.js';

export const CONTAINERS = ['app', 'worker'];

export const POLICY_SPEC = {
  defaults: { fileDescriptorStoreMax: 1024, notifyAccess: 'all', timeoutStartSec: '2min', preserve: 'restart' },
  containers: [
    { name: 'app', watchdogSec: '30s', watchdogSignal: true, releaseAfterSec: '10min' },
    { name: 'worker', fileDescriptorStoreMax: 64, notifyAccess: 'main', preserve: 'no' },
  ],
};

/** The FdStorePolicy object (selector: the bench's pods). */
export function benchPolicy(name, namespace, matchLabels) {
  return { apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name, namespace }, spec: { selector: { matchLabels }, ...POLICY_SPEC } };
}

/** The config file text the operator writes for this policy at `generation`. */
export function renderedConfig(name = 'bench', generation = 1) {
  return renderConfig({ apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name, namespace: 'bench', generation }, spec: POLICY_SPEC });
}
