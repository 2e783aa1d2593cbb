// Layering of src/ (issue 7 item 18, STYLE.md's layout): every import of every file,
// parsed with the TypeScript compiler (static `import`/`export ... from`, dynamic
// `import('...')`, `import('...').T` in types), checked against the table below.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, dirname, normalize } from 'node:path';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/proc.js';
import * as layout from '../../src/unit/layout.js';
import { NOTIFY_NAME } from '../../src/native/proto.js';

/**
 * The layers, bottom first. `operator` holds the webhook (inject/) too: the operator
 * process serves it, and the two import each other's policy and patch code.
 */
const LAYERS: Record<string, readonly string[]> = {
  log: ['src/log/'],
  native: ['src/native/'],
  store: ['src/store/'],
  unit: ['src/unit/'],
  notify: ['src/notify/'],
  restore: ['src/restore/'],
  admin: ['src/admin/'],
  status: ['src/status/'],
  config: ['src/config/'],
  http: ['src/http/'],
  metrics: ['src/metrics/'],
  keeper: ['src/keeper/'],
  agent: ['src/agent/'],
  demo: ['src/demo/'],
  crd: ['src/crd/'],
  operator: ['src/operator/', 'src/inject/'],
  cli: ['src/cli/'],
};

interface Rule {
  /** Layers (or single files) this layer may import at run time; its own always. */
  value: readonly string[];
  /** Only through `import('...')`: loaded when used, never at start. */
  lazy?: readonly string[];
  /**
   * Only through type-only imports (`import type`, `export type`, `import('x').T`):
   * tsc erases them, so they add no load order and no cycle at run time; they still
   * couple, so each is named here, and none reaches agent/ or cli/ (below).
   */
  type?: readonly string[];
  /** npm packages (node: builtins are always allowed). */
  packages?: readonly string[];
}

const PROTO = 'src/native/proto.ts'; // constants shared with C (proto.h): importable from anywhere
const NOTIFY_VALUES = 'src/notify/values.ts'; // pure validators of notify values, used by the config too

/**
 * Who may import whom. Why this direction: the unit model (container, run, status,
 * layout, the Observer and its reasons) is at the bottom with the leaves it holds
 * (store, log, the C constants); notify/, restore/ and admin/ are the protocols on
 * top of it; metrics/ and http/ observe it (through the Observer and status/, so
 * they need neither notify/ nor restore/); agent/ composes all of these and cli/
 * composes agent/ and the operator. Nothing imports agent/ or cli/. The operator
 * (with crd/ and inject/) runs in its own pods: it shares only config, status,
 * http, log and the layout with the agent, and the agent never loads it
 * (cli/ imports it lazily: @kubernetes/client-node costs +75 MB RSS, issue 8).
 */
const RULES: Record<string, Rule> = {
  log: { value: [] },
  native: { value: ['log'] },
  store: { value: ['log', 'native'] },
  unit: { value: ['log', 'store', PROTO], type: ['config', NOTIFY_VALUES] },
  notify: { value: ['log', 'native', 'store', 'unit'] },
  restore: { value: ['log', 'native', 'store', 'unit'] },
  admin: { value: ['log', 'native', 'store', 'unit'] },
  status: { value: ['log', 'store', 'unit'] },
  config: { value: ['log', PROTO, NOTIFY_VALUES], type: ['status'], packages: ['yaml'] },
  http: { value: ['log', 'config', 'status', 'unit'], packages: ['prom-client'] },
  metrics: { value: ['log', 'store', 'unit', 'status', 'http', 'config'], packages: ['prom-client'] },
  keeper: { value: ['log', 'native', 'store', 'unit'], type: ['config', NOTIFY_VALUES] },
  agent: { value: ['log', 'native', 'store', 'unit', 'notify', 'restore', 'admin', 'status', 'config', 'http', 'keeper'] },
  demo: { value: ['native', 'unit'] },
  crd: { value: ['config', 'status', PROTO], packages: ['yaml'] },
  operator: {
    value: ['log', 'config', 'http', 'status', 'crd', PROTO, 'src/unit/layout.ts', 'src/metrics/version.ts'],
    type: ['unit'],
    packages: ['@kubernetes/client-node', 'prom-client'],
  },
  cli: {
    value: ['log', 'native', 'store', 'unit', 'notify', 'restore', 'admin', 'status', 'config', 'http', 'metrics', 'keeper', 'agent'],
    lazy: ['operator'],
    type: ['operator'],
    packages: ['prom-client'],
  },
};

type Kind = 'value' | 'type' | 'lazy';
interface Edge {
  from: string;
  line: number;
  spec: string;
  /** Repo-relative .ts path, or the package name. */
  target: string;
  kind: Kind;
}

/** Every import of one file's text. Exported forms: see the self-test below. */
function importsOf(file: string, text: string): Edge[] {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const out: Edge[] = [];
  const add = (node: ts.Node, spec: ts.Expression | undefined, kind: Kind): void => {
    if (!spec || !ts.isStringLiteral(spec)) return;
    out.push({ from: file, line: sf.getLineAndCharacterOfPosition(node.getStart()).line + 1, spec: spec.text, target: resolve(file, spec.text), kind });
  };
  const visit = (n: ts.Node): void => {
    if (ts.isImportDeclaration(n)) add(n, n.moduleSpecifier, importKind(n));
    else if (ts.isExportDeclaration(n)) add(n, n.moduleSpecifier, exportKind(n));
    else if (ts.isCallExpression(n) && n.expression.kind === ts.SyntaxKind.ImportKeyword) add(n, n.arguments[0], 'lazy');
    else if (ts.isImportTypeNode(n) && ts.isLiteralTypeNode(n.argument)) add(n, n.argument.literal, 'type');
    ts.forEachChild(n, visit);
  };
  visit(sf);
  return out;
}

/** `import type`, or only `type` specifiers (tsc elides those without verbatimModuleSyntax). */
function importKind(n: ts.ImportDeclaration): Kind {
  const c = n.importClause;
  if (!c) return 'value'; // import './x.js': for its effects
  if (c.isTypeOnly) return 'type';
  const b = c.namedBindings;
  if (c.name || !b || !ts.isNamedImports(b)) return 'value';
  return b.elements.length > 0 && b.elements.every((e) => e.isTypeOnly) ? 'type' : 'value';
}

function exportKind(n: ts.ExportDeclaration): Kind {
  if (n.isTypeOnly) return 'type';
  const c = n.exportClause;
  return c && ts.isNamedExports(c) && c.elements.length > 0 && c.elements.every((e) => e.isTypeOnly) ? 'type' : 'value';
}

function resolve(from: string, spec: string): string {
  if (!spec.startsWith('.')) return spec.startsWith('node:') ? spec : spec.split('/').slice(0, spec.startsWith('@') ? 2 : 1).join('/');
  return normalize(join(dirname(from), spec)).replace(/\.js$/, '.ts');
}

function layerOf(path: string): string | null {
  for (const [name, prefixes] of Object.entries(LAYERS)) if (prefixes.some((p) => path.startsWith(p))) return name;
  return null;
}

/** An entry of a rule list: a layer by name, or one file. */
function matches(entry: string, target: string): boolean {
  return entry.endsWith('.ts') ? entry === target : layerOf(target) === entry;
}

function allowed(e: Edge): boolean {
  if (e.target.startsWith('node:')) return true;
  const from = layerOf(e.from)!;
  const r = RULES[from]!;
  if (!e.target.startsWith('src/')) return (r.packages ?? []).includes(e.target);
  if (layerOf(e.target) === from) return true;
  const lists = { value: [r.value], lazy: [r.value, r.lazy ?? []], type: [r.value, r.lazy ?? [], r.type ?? []] }[e.kind];
  return lists.some((l) => l.some((entry) => matches(entry, e.target)));
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) => {
    const p = join(dir, d.name);
    return d.isDirectory() ? sourceFiles(p) : d.name.endsWith('.ts') ? [relative(REPO, p)] : [];
  });
}

const FILES = sourceFiles(join(REPO, 'src'));
const EDGES = FILES.flatMap((f) => importsOf(f, readFileSync(join(REPO, f), 'utf8')));
const show = (e: Edge): string => `${e.from}:${e.line} ${e.kind} import of ${e.spec}`;
const crossing = (e: Edge): boolean => e.target.startsWith('src/') && layerOf(e.target) !== layerOf(e.from);

describe('the import parser', () => {
  it('sees static, re-export, dynamic and type-position imports, and tells type-only ones apart', () => {
    const text = [
      "import { a } from './a.js';",
      "import type { B } from '../b/b.js';",
      "import { type C, type D } from './c.js';",
      "import { type E, f } from './e.js';",
      "import './side.js';",
      "import * as g from './g.js';",
      "import {\n  h,\n} from './h.js';",
      "export { i } from './i.js';",
      "export type { J } from './j.js';",
      "export * from './k.js';",
      "const l = await import('../l/l.js');",
      "let m: import('./m.js').M;",
      "import { n } from 'node:fs';",
      "import { o } from '@kubernetes/client-node/dist/x.js';",
    ].join('\n');
    const got = importsOf('src/x/y.ts', text).map((e) => `${e.target} ${e.kind}`);
    expect(got).toEqual([
      'src/x/a.ts value',
      'src/b/b.ts type',
      'src/x/c.ts type',
      'src/x/e.ts value',
      'src/x/side.ts value',
      'src/x/g.ts value',
      'src/x/h.ts value',
      'src/x/i.ts value',
      'src/x/j.ts type',
      'src/x/k.ts value',
      'src/l/l.ts lazy',
      'src/x/m.ts type',
      'node:fs value',
      '@kubernetes/client-node value',
    ]);
  });

  it('reads all of src/: every file is in a layer, and the imports it finds include known ones', () => {
    expect(FILES.length).toBeGreaterThan(100);
    expect(FILES.filter((f) => layerOf(f) === null)).toEqual([]);
    const has = (from: string, target: string, kind: Kind): boolean => EDGES.some((e) => e.from === from && e.target === target && e.kind === kind);
    expect(has('src/agent/agent.ts', 'src/notify/server.ts', 'value')).toBe(true);
    expect(has('src/cli/operator.ts', 'src/operator/main.ts', 'lazy')).toBe(true);
    expect(EDGES.filter(crossing).length).toBeGreaterThan(200);
  });
});

describe('layering of src/', () => {
  it('every import follows the rule table', () => {
    expect(EDGES.filter((e) => !allowed(e)).map(show)).toEqual([]);
  });

  it('only agent/ and cli/ import agent/, and only cli/ imports cli/ (types included): they compose, nothing builds on them', () => {
    const bad = EDGES.filter(
      (e) => (layerOf(e.target) === 'agent' && !['agent', 'cli'].includes(layerOf(e.from)!)) || (layerOf(e.target) === 'cli' && layerOf(e.from) !== 'cli'),
    );
    expect(bad.map(show)).toEqual([]);
  });

  it('the agent side never loads the operator or @kubernetes/client-node; cli/ only lazily', () => {
    const operatorSide = ['operator', 'crd'];
    const bad = EDGES.filter((e) => {
      const from = layerOf(e.from)!;
      if (operatorSide.includes(from)) return false;
      const toOperator = operatorSide.includes(layerOf(e.target) ?? '') || e.target === '@kubernetes/client-node';
      return toOperator && !(from === 'cli' && e.kind !== 'value' && e.target !== '@kubernetes/client-node');
    });
    expect(bad.map(show)).toEqual([]);
    // and within the operator, client-node stays in src/operator/ (not the webhook's pure code)
    expect(EDGES.filter((e) => e.target === '@kubernetes/client-node' && !e.from.startsWith('src/operator/')).map(show)).toEqual([]);
  });

  it('unit/ is the bottom: at run time it imports only unit/, the leaves store/ and log/, and proto.ts', () => {
    const runtime = (l: string): Edge[] => EDGES.filter((e) => layerOf(e.from) === l && e.kind !== 'type' && crossing(e));
    expect(runtime('unit').filter((e) => !['store', 'log'].includes(layerOf(e.target)!) && e.target !== PROTO).map(show)).toEqual([]);
    expect(runtime('store').filter((e) => !['log', 'native'].includes(layerOf(e.target)!)).map(show)).toEqual([]);
    expect(runtime('log').map(show)).toEqual([]);
  });

  it('the table has a direction: its run-time edges between layers form no cycle', () => {
    const deps = (l: string): string[] => {
      const r = RULES[l]!;
      return [...r.value, ...(r.lazy ?? [])].map((entry) => (entry.endsWith('.ts') ? layerOf(entry)! : entry));
    };
    const order: string[] = [];
    const state = new Map<string, 'visiting' | 'done'>();
    const visit = (l: string, path: string[]): void => {
      if (state.get(l) === 'done') return;
      if (state.get(l) === 'visiting') throw new Error(`cycle: ${[...path, l].join(' -> ')}`);
      state.set(l, 'visiting');
      for (const d of deps(l)) visit(d, [...path, l]);
      state.set(l, 'done');
      order.push(l);
    };
    for (const l of Object.keys(RULES)) visit(l, []);
    expect(order.sort()).toEqual(Object.keys(LAYERS).sort());
  });
});

describe('one layout module names the run-dir paths', () => {
  // Names a path is built of; proto.ts holds notify/restore (shared with proto.h).
  const NAMES = [layout.ADMIN_DIR, layout.ADMIN_SOCKET, layout.KEEPER_DIR, layout.KEEPER_SOCKET, layout.LAUNCHER_NAME];

  it('no other file of src/ spells them in a path (prose, with spaces, may name them)', () => {
    const bad: string[] = [];
    for (const f of FILES.filter((f) => f !== 'src/unit/layout.ts')) {
      const sf = ts.createSourceFile(f, readFileSync(join(REPO, f), 'utf8'), ts.ScriptTarget.Latest, true);
      const visit = (n: ts.Node): void => {
        if ((ts.isStringLiteralLike(n) || ts.isTemplateLiteralToken(n)) && !/\s/.test(n.text) && n.text.split('/').some((c) => NAMES.includes(c))) {
          bad.push(`${f}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1} ${JSON.stringify(n.text)}`);
        }
        ts.forEachChild(n, visit);
      };
      visit(sf);
    }
    expect(bad).toEqual([]);
  });

  it("the chart's sidecar template builds its run-dir paths from the same names", () => {
    // The pod's run dir as the agent sees it (the keeper socket) and as an app sees it
    // (its own DIR/NAME mounted at runDir: the launcher and NOTIFY_SOCKET).
    const tpl = readFileSync(join(REPO, 'charts/fdstore/templates/_sidecar.tpl'), 'utf8');
    const paths = [...tpl.matchAll(/printf "%s\/([^"]*)" \$s\.runDir/g)].map((m) => m[1]);
    expect(paths.sort()).toEqual([`${layout.KEEPER_DIR}/${layout.KEEPER_SOCKET}`, layout.LAUNCHER_NAME, NOTIFY_NAME].sort());
  });
});
