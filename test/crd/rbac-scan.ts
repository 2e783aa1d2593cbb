/**
 * Which Kubernetes API requests the operator's source makes, read from the source
 * itself (TypeScript's parser), for test/crd/rbac.test.ts:
 *
 * - every call of a generated client-node API method (the names are taken from
 *   client-node's own `*Api` classes, so a new one cannot slip by) must sit inside a
 *   call that passes an `API_CALLS.<name>` entry of src/operator/rbac.ts, and the
 *   method must be that entry's verb on that entry's resource (`readNamespacedLease`
 *   is `get leases`); a custom-object call must take its group and plural from the
 *   same entry (`...custom(API_CALLS.<name>)`). VersionApi's methods are non-resource
 *   requests: they must be listed in NON_RESOURCE_CALLS;
 * - every `new Watched(...)` must take its `source` from a builder of
 *   src/operator/kube/source.ts whose result declares its list and watch entries;
 * - client-node's raw watch machinery (ListWatch, Watch, makeInformer) and the raw
 *   list (getJson) are imported only by the Watched implementation.
 *
 * Findings are returned, not thrown, so that the test can show the scan failing on
 * a synthetic file.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import ts from 'typescript';

export interface Found {
  /** `API_CALLS.<entry>` names (and `NON_RESOURCE_CALLS.<entry>`) the code's requests are declared as. */
  entries: Set<string>;
  /** Builders of kube/source.ts used as a Watched's source. */
  watchSources: Set<string>;
  problems: string[];
}

/** The files allowed to use client-node's watch machinery and the raw list directly. */
const WATCH_IMPL = new Set(['operator/kube/generation.ts', 'operator/kube/watch.ts', 'operator/kube/rawget.ts']);
const RAW_WATCH = new Set(['ListWatch', 'Watch', 'makeInformer', 'getJson']);

/** RBAC verb of a generated method's prefix. */
const VERBS: [RegExp, string][] = [
  [/^read/, 'get'],
  [/^get/, 'get'],
  [/^list/, 'list'],
  [/^create/, 'create'],
  [/^replace/, 'update'],
  [/^patch/, 'patch'],
  [/^deleteCollection/, 'deletecollection'],
  [/^delete/, 'delete'],
  [/^connect/, 'connect'],
];

/** API group of a client-node API class (extend when the operator uses another one). */
const GROUPS: Record<string, string> = { CoreV1Api: '', CoordinationV1Api: 'coordination.k8s.io', CustomObjectsApi: '*', VersionApi: '-' };

/** method name -> the client-node API classes that have it. */
function generatedMethods(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [cls, v] of Object.entries(k8s)) {
    if (typeof v !== 'function' || !/Api$/.test(cls) || cls === 'KubernetesObjectApi') continue;
    for (const m of Object.getOwnPropertyNames((v as { prototype: object }).prototype)) {
      // Generated names are camelCase with a kind in them; `constructor` and helpers are not.
      if (m === 'constructor' || !/[A-Z]/.test(m)) continue;
      out.set(m, [...(out.get(m) ?? []), cls]);
    }
  }
  return out;
}

export interface Entry {
  group: string;
  resource: string;
  verb: string;
}

/** What a generated method requests: verb, resource (`pods`, `leases/status`), and its class. */
export function requestOf(method: string, classes: string[]): { verb: string; resource: string | null; classes: string[] } {
  const verb = VERBS.find(([re]) => re.test(method))?.[1] ?? '?';
  const kind = method.replace(/^(read|get|list|create|replace|patch|deleteCollection|delete|connect)/, '').replace(/^Namespaced|^Cluster/, '').replace(/ForAllNamespaces$/, '');
  const status = /Status$/.test(kind);
  const base = kind.replace(/Status$/, '');
  const resource = base === '' || base === 'CustomObject' ? null : `${base[0]!.toLowerCase()}${base.slice(1)}s${status ? '/status' : ''}`;
  return { verb, resource: base === 'CustomObject' && status ? '*/status' : resource, classes };
}

function entryRef(n: ts.Node, table = 'API_CALLS'): string | null {
  if (ts.isPropertyAccessExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === table) return n.name.text;
  return null;
}

/** A custom-object call: group and plural must come from the same entry, and /status agree. */
function customProblems(n: ts.CallExpression, method: string, entry: string, e: Entry, status: boolean): string[] {
  const out: string[] = [];
  if (status !== e.resource.endsWith('/status')) out.push(`${method} and API_CALLS.${entry} (${e.resource}) disagree on /status`);
  const arg = n.arguments[0];
  const spread = arg && ts.isObjectLiteralExpression(arg)
    ? arg.properties.some((p) => ts.isSpreadAssignment(p) && ts.isCallExpression(p.expression) && p.expression.arguments.some((a) => entryRef(a) === entry))
    : false;
  if (!spread) out.push(`${method} must take group and plural from its entry: { ...custom(API_CALLS.${entry}), ... }`);
  return out;
}

/** Scan files (path relative to src/ -> text) against the entries of rbac.ts. */
export function scan(files: Map<string, string>, table: Record<string, Entry>, nonResource: Record<string, { method: string }>): Found {
  const methods = generatedMethods();
  const found: Found = { entries: new Set(), watchSources: new Set(), problems: [] };
  const nonResourceMethods = new Map(Object.entries(nonResource).map(([name, c]) => [c.method, name]));
  for (const [file, text] of files) {
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
    const where = (n: ts.Node): string => `${file}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`;
    const visit = (n: ts.Node): void => {
      if (ts.isImportDeclaration(n) && ts.isStringLiteral(n.moduleSpecifier) && !WATCH_IMPL.has(file)) {
        const from = n.moduleSpecifier.text;
        const bindings = n.importClause?.namedBindings;
        if ((from === '@kubernetes/client-node' || from.endsWith('/rawget.js')) && bindings && ts.isNamedImports(bindings)) {
          for (const b of bindings.elements) {
            const name = (b.propertyName ?? b.name).text;
            if (RAW_WATCH.has(name)) found.problems.push(`${where(n)}: ${name} outside the Watched implementation (a watch or list not declared in rbac.ts)`);
          }
        }
      }
      if (ts.isCallExpression(n) && ts.isPropertyAccessExpression(n.expression)) {
        const name = n.expression.name.text;
        const classes = methods.get(name);
        if (classes) checkCall(n, name, classes);
      }
      if (ts.isNewExpression(n) && ts.isIdentifier(n.expression) && n.expression.text === 'Watched') checkWatched(n);
      ts.forEachChild(n, visit);
    };
    const checkCall = (n: ts.CallExpression, method: string, classes: string[]): void => {
      const nr = classes.map((c) => nonResourceMethods.get(`${c}.${method}`)).find((x) => x !== undefined);
      if (classes.every((c) => GROUPS[c] === '-')) {
        if (nr === undefined) found.problems.push(`${where(n)}: ${classes.join('/')}.${method}: a non-resource request not in NON_RESOURCE_CALLS`);
        else found.entries.add(`NON_RESOURCE_CALLS.${nr}`);
        return;
      }
      let entry: string | null = null;
      for (let p: ts.Node | undefined = n.parent; p && entry === null; p = p.parent) {
        if (ts.isCallExpression(p)) for (const a of p.arguments) entry ??= entryRef(a);
      }
      if (entry === null) {
        found.problems.push(`${where(n)}: ${method} is not declared: call it through a wrapper that takes its API_CALLS entry`);
        return;
      }
      const e = table[entry];
      if (e === undefined) {
        found.problems.push(`${where(n)}: API_CALLS.${entry} does not exist`);
        return;
      }
      found.entries.add(`API_CALLS.${entry}`);
      const req = requestOf(method, classes);
      const groups = classes.map((c) => GROUPS[c]);
      const groupOk = groups.some((g) => g === '*' || g === e.group);
      if (groups.every((g) => g === undefined)) found.problems.push(`${where(n)}: ${method}: API class ${classes.join('/')} unknown to the scan (add its group)`);
      else if (!groupOk) found.problems.push(`${where(n)}: ${method} is in group ${groups.join('/')}, API_CALLS.${entry} says ${e.group || 'core'}`);
      if (req.verb !== e.verb) found.problems.push(`${where(n)}: ${method} is verb ${req.verb}, API_CALLS.${entry} says ${e.verb}`);
      if (req.resource === null || req.resource === '*/status') {
        for (const p of customProblems(n, method, entry, e, req.resource === '*/status')) found.problems.push(`${where(n)}: ${p}`);
      } else if (req.resource !== e.resource) {
        found.problems.push(`${where(n)}: ${method} is resource ${req.resource}, API_CALLS.${entry} says ${e.resource}`);
      }
    };
    const checkWatched = (n: ts.NewExpression): void => {
      const opts = n.arguments?.[0];
      const source = opts && ts.isObjectLiteralExpression(opts)
        ? opts.properties.find((p): p is ts.PropertyAssignment => ts.isPropertyAssignment(p) && ts.isIdentifier(p.name) && p.name.text === 'source')
        : undefined;
      const init = source?.initializer;
      if (init && ts.isCallExpression(init) && ts.isIdentifier(init.expression)) found.watchSources.add(init.expression.text);
      else found.problems.push(`${where(n)}: a Watched whose source is not built by kube/source.ts (its requests are not declared)`);
    };
    visit(sf);
  }
  return found;
}

/** Every .ts file under dir, by path relative to it. */
export function sources(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string): void => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) out.set(relative(dir, p), readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}
