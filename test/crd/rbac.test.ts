// charts/fdstore/files/operator-rbac.yaml: well-formed RBAC (kubernetes-models), and
// exactly the verbs the operator needs: nothing more (least privilege), nothing less.
// What it needs is src/operator/rbac.ts, and the source is read (rbac-scan.ts) to prove
// that every request it makes is declared there and every entry is made.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterRole, Role } from 'kubernetes-models/rbac.authorization.k8s.io/v1';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { fdStoreCrd } from '../../src/crd/fdstore.js';
import { fdStorePolicyCrd } from '../../src/crd/policy.js';
import * as sourceBuilders from '../../src/operator/kube/source.js';
import type { WatchSource } from '../../src/operator/kube/source.js';
import { API_CALLS, NON_RESOURCE_CALLS, type ApiCall } from '../../src/operator/rbac.js';
import { scan, sources } from './rbac-scan.js';

const path = join(import.meta.dirname, '..', '..', 'charts', 'fdstore', 'files', 'operator-rbac.yaml');
const SRC = join(import.meta.dirname, '..', '..', 'src');
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

  it('the ClusterRole and the Role grant exactly the requests of src/operator/rbac.ts: nothing missing, nothing extra', () => {
    const want = (role: 'cluster' | 'lease'): Record<string, string[]> => {
      const out: Record<string, string[]> = {};
      for (const c of Object.values(API_CALLS)) {
        if (c.role !== role) continue;
        const key = `${c.group || 'core'}/${c.resource}`;
        out[key] = [...(out[key] ?? []), c.verb].sort();
      }
      return out;
    };
    expect(grants(docs[0]!.rules)).toEqual(want('cluster'));
    expect(grants(docs[1]!.rules)).toEqual(want('lease'));
    // Spelled out once, so that a change to the table shows in review as a change of rights.
    expect(want('cluster')).toEqual({
      'core/pods': ['list', 'patch', 'watch'],
      'fdstore.dev/fdstorepolicies': ['list', 'watch'],
      'fdstore.dev/fdstorepolicies/status': ['patch'],
      'fdstore.dev/fdstores': ['create', 'get'],
      'fdstore.dev/fdstores/status': ['patch'],
      'core/events': ['create'],
    });
    // No verb twice: a duplicate rule would hide a removal.
    for (const d of docs) for (const v of Object.values(grants(d.rules))) expect(new Set(v).size).toBe(v.length);
  });

  it('the source makes exactly the requests rbac.ts declares: every client-node API call and watch declared and matching, every entry used', () => {
    const found = scan(sources(SRC), API_CALLS, NON_RESOURCE_CALLS);
    expect(found.problems).toEqual([]);
    expect([...found.watchSources].sort()).toEqual(['enrolledPods', 'fdStorePolicies']);
    const byValue = new Map<ApiCall, string>(Object.entries(API_CALLS).map(([k, v]) => [v, `API_CALLS.${k}`]));
    const used = new Set(found.entries);
    for (const b of found.watchSources) {
      const build = (sourceBuilders as Record<string, unknown>)[b] as (ns?: string) => WatchSource;
      for (const ns of [undefined, 'shop']) {
        const src = build(ns);
        expect(src.calls, `${b}() declares its requests`).toBeDefined();
        for (const c of [src.calls!.list, src.calls!.watch]) {
          expect(byValue.has(c), `${b}(): ${c.verb} ${c.resource} is an API_CALLS entry`).toBe(true);
          used.add(byValue.get(c)!);
          // The URL is the entry's resource: the permission and the request cannot drift apart.
          expect(src.path.split('/').at(-1)).toBe(c.resource);
          expect(src.path.startsWith(c.group ? `/apis/${c.group}/` : '/api/')).toBe(true);
        }
      }
    }
    const declared = [...Object.keys(API_CALLS).map((k) => `API_CALLS.${k}`), ...Object.keys(NON_RESOURCE_CALLS).map((k) => `NON_RESOURCE_CALLS.${k}`)];
    expect([...used].sort()).toEqual(declared.sort());
  });

  it('the scan fails on an undeclared call, a mismatched entry, a custom object not from its entry, a raw watch', () => {
    const bad = new Map([
      ['operator/a.ts', 'async function f(api) { await api.deleteNamespacedPod({ namespace, name }); }'],
      ['operator/b.ts', 'async function f(api) { await this.call(API_CALLS.patchPod, (o) => api.replaceNamespacedPod({ namespace, name, body }, o)); }'],
      ['operator/c.ts', 'async function f(api) { await this.call(API_CALLS.getFdStore, (o) => api.getNamespacedCustomObject({ group: "fdstore.dev", plural: "fdstores" }, o)); }'],
      ['operator/d.ts', 'async function f(api) { await this.call(API_CALLS.patchFdStoreStatus, (o) => api.patchNamespacedCustomObject({ ...custom(API_CALLS.patchFdStoreStatus) }, o)); }'],
      ['operator/e.ts', "import { ListWatch } from '@kubernetes/client-node'; const w = new Watched({ kc, source: { path } });"],
      ['operator/f.ts', 'await api.getCode();'],
    ]);
    const problems = scan(bad, API_CALLS, {}).problems.join('\n');
    expect(problems).toMatch(/a\.ts:1: deleteNamespacedPod is not declared/);
    expect(problems).toMatch(/b\.ts:1: replaceNamespacedPod is verb update, API_CALLS.patchPod says patch/);
    expect(problems).toMatch(/c\.ts:1: getNamespacedCustomObject must take group and plural from its entry/);
    expect(problems).toMatch(/d\.ts:1: patchNamespacedCustomObject and API_CALLS.patchFdStoreStatus \(fdstores\/status\) disagree on \/status/);
    expect(problems).toMatch(/e\.ts:1: ListWatch outside the Watched implementation/);
    expect(problems).toMatch(/e\.ts:1: a Watched whose source is not built by kube\/source.ts/);
    expect(problems).toMatch(/f\.ts:1: VersionApi.getCode: a non-resource request not in NON_RESOURCE_CALLS/);
    // The real wrappers pass: the same call declared right.
    const good = new Map([['operator/g.ts', 'async function f(api) { await this.call(API_CALLS.patchPod, (o) => api.patchNamespacedPod({ namespace, name, body }, o)); }']]);
    expect(scan(good, API_CALLS, {})).toMatchObject({ problems: [], entries: new Set(['API_CALLS.patchPod']) });
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
