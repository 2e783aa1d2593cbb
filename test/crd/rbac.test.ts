// charts/fdstore/files/operator-rbac.yaml: well-formed RBAC (kubernetes-models), and
// exactly the verbs the operator needs: nothing more (least privilege), nothing less.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterRole, Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { fdStoreCrd } from '../../src/crd/fdstore.js';
import { fdStorePolicyCrd } from '../../src/crd/policy.js';

const path = join(import.meta.dirname, '..', '..', 'charts', 'fdstore', 'files', 'operator-rbac.yaml');
const docs = parseAllDocuments(readFileSync(path, 'utf8')).map((d) => {
  expect(d.errors).toEqual([]);
  return d.toJS() as { kind: string; metadata: { name: string; namespace?: string }; rules: { apiGroups: string[]; resources: string[]; verbs: string[]; resourceNames?: string[] }[] };
});

/** group/resource -> verbs, from rules (a rule may list several of each). */
function grants(rules: (typeof docs)[number]['rules']): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const r of rules) {
    for (const g of r.apiGroups) {
      for (const res of r.resources) {
        const key = `${g || 'core'}/${res}`;
        out[key] = [...(out[key] ?? []), ...r.verbs].sort();
      }
    }
  }
  return out;
}

describe('operator RBAC', () => {
  it('is one ClusterRole and one Role, each valid RBAC for Kubernetes (kubernetes-models)', () => {
    expect(docs.map((d) => d.kind)).toEqual(['ClusterRole', 'Role']);
    expect(() => new ClusterRole(docs[0] as never).validate()).not.toThrow();
    expect(() => new Role(docs[1] as never).validate()).not.toThrow();
    // The check can fail: a rule without verbs is not RBAC.
    const broken = structuredClone(docs[0]!) as { rules: Record<string, unknown>[] };
    delete broken.rules[0]!.verbs;
    expect(() => new ClusterRole(broken as never).validate()).toThrow(/verbs/);
  });

  it('the ClusterRole grants exactly the operator\'s verbs', () => {
    expect(grants(docs[0]!.rules)).toEqual({
      'core/pods': ['get', 'list', 'patch', 'watch'],
      'fdstore.dev/fdstorepolicies': ['get', 'list', 'watch'],
      'fdstore.dev/fdstorepolicies/status': ['patch', 'update'],
      'fdstore.dev/fdstores': ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
      'fdstore.dev/fdstores/status': ['get', 'patch', 'update'],
      'core/events': ['create', 'patch'],
    });
  });

  it('the Role grants the leader-election Lease only, and no namespace is fixed (the chart sets it)', () => {
    expect(grants(docs[1]!.rules)).toEqual({ 'coordination.k8s.io/leases': ['create', 'get', 'update'] });
    for (const d of docs) expect(d.metadata.namespace).toBeUndefined();
  });

  it('no wildcards and no resourceNames', () => {
    for (const d of docs) {
      for (const r of d.rules) {
        expect([...r.apiGroups, ...r.resources, ...r.verbs]).not.toContain('*');
        expect(r.resourceNames).toBeUndefined();
      }
    }
  });

  it('the fdstore.dev resources named are the CRDs\' plurals', () => {
    const plurals = [fdStorePolicyCrd(), fdStoreCrd()].map((c) => c.spec.names.plural);
    const named = Object.keys(grants(docs[0]!.rules)).filter((k) => k.startsWith('fdstore.dev/')).map((k) => k.split('/')[1]);
    expect([...new Set(named)].sort()).toEqual(plurals.sort());
  });
});
