/**
 * A policy as the agent's config file: the text the operator writes into the pod's
 * `fdstore.dev/config` annotation (projected into the sidecar by a downwardAPI
 * volume). Pure and canonical: keys sorted at every level, so the same policy
 * renders the same bytes on every replica and a no-op reconcile writes nothing.
 *
 * The file format is the agent's own (docs/configuration.md): `policy` names the
 * source (echoed back in /status, so the operator can tell when the agent applied
 * it), `defaults` apply to every container, `containers` by name.
 */
import type { FdStorePolicy } from '../types.js';

export interface ConfigSource {
  name: string;
  generation: number;
}

/** The annotation's text for a winning policy; null (no annotation: the agent runs on its flags) without one. */
export function renderConfig(policy: FdStorePolicy | null): string | null {
  if (policy === null) return null;
  const doc: Record<string, unknown> = {
    policy: { name: policy.metadata.name, generation: policy.metadata.generation ?? 0 } satisfies ConfigSource,
  };
  const { defaults, containers } = policy.spec ?? {};
  if (defaults && Object.keys(defaults).length > 0) doc.defaults = defaults;
  if (containers && containers.length > 0) doc.containers = [...containers].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return canonicalJson(doc);
}

/** JSON with object keys sorted recursively (arrays keep their order). */
export function canonicalJson(v: unknown): string {
  return JSON.stringify(sortKeys(v));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v as object).sort()) out[k] = sortKeys((v as Record<string, unknown>)[k]);
    return out;
  }
  return v;
}
