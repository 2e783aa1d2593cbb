/**
 * Validation of rendered manifests: kubernetes-models 4.5.1 (Kubernetes schema v1.33,
 * ajv) for types, required fields and formats, plus a strict pass for unknown fields,
 * which those schemas accept (they never close an object) and which an API server
 * before 1.25 drops without a word (1.20 would run a pod without a misspelled probe).
 *
 * The strict pass walks each object against the model's TypeScript declaration (the
 * .d.ts files kubernetes-models generates from the same OpenAPI document): every
 * property must be declared by the type at its path; maps (index signatures) take any
 * key; `any` (RawExtension, JSON) ends the walk. kubernetes-models ships its schemas
 * only as compiled validators, so the declarations are the readable form of them.
 */
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import ts from 'typescript';
import type { Obj } from './helm.js';

const require = createRequire(import.meta.url);
const MODELS = dirname(require.resolve('kubernetes-models/package.json'));

/** apiVersion/kind -> module (under kubernetes-models) and interface. */
const TYPES: Record<string, [string, string]> = {
  'apps/v1/Deployment': ['apps/v1/Deployment', 'IDeployment'],
  'v1/Service': ['v1/Service', 'IService'],
  'v1/ServiceAccount': ['v1/ServiceAccount', 'IServiceAccount'],
  'v1/ConfigMap': ['v1/ConfigMap', 'IConfigMap'],
  'v1/Secret': ['v1/Secret', 'ISecret'],
  'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration': ['admissionregistration.k8s.io/v1/MutatingWebhookConfiguration', 'IMutatingWebhookConfiguration'],
  'v1/Pod': ['v1/Pod', 'IPod'],
  'policy/v1/PodDisruptionBudget': ['policy/v1/PodDisruptionBudget', 'IPodDisruptionBudget'],
  'rbac.authorization.k8s.io/v1/ClusterRole': ['rbac.authorization.k8s.io/v1/ClusterRole', 'IClusterRole'],
  'rbac.authorization.k8s.io/v1/ClusterRoleBinding': ['rbac.authorization.k8s.io/v1/ClusterRoleBinding', 'IClusterRoleBinding'],
  'rbac.authorization.k8s.io/v1/Role': ['rbac.authorization.k8s.io/v1/Role', 'IRole'],
  'rbac.authorization.k8s.io/v1/RoleBinding': ['rbac.authorization.k8s.io/v1/RoleBinding', 'IRoleBinding'],
  'coordination.k8s.io/v1/Lease': ['coordination.k8s.io/v1/Lease', 'ILease'],
  'apiextensions.k8s.io/v1/CustomResourceDefinition': ['apiextensions.k8s.io/v1/CustomResourceDefinition', 'ICustomResourceDefinition'],
};

/**
 * policy/v1beta1 PodDisruptionBudget (what the chart renders before 1.21) is gone from
 * the v1.33 schema; its spec and metadata have the fields of policy/v1 that the chart
 * uses (maxUnavailable, selector), so it is checked as policy/v1.
 */
export const typeKey = (o: Obj): string =>
  o.apiVersion === 'policy/v1beta1' && o.kind === 'PodDisruptionBudget' ? 'policy/v1/PodDisruptionBudget' : `${o.apiVersion}/${o.kind}`;

/** Not a kind: the schema node that JSONSchemaPropsOrArray and JSONSchemaPropsOrBool stand for. */
const SCHEMA_PROPS = 'JSONSchemaProps';
TYPES[SCHEMA_PROPS] = ['apiextensions.k8s.io/v1/JSONSchemaProps', 'IJSONSchemaProps'];

interface Checker {
  checker: ts.TypeChecker;
  types: Map<string, ts.Type>;
}

let loaded: Checker | undefined;

function load(): Checker {
  if (loaded) return loaded;
  const entry = join(MODELS, '__strict_entry__.ts');
  const keys = Object.keys(TYPES);
  const text = keys.map((k, i) => `import type { ${TYPES[k]![1]} as T${i} } from './${TYPES[k]![0]}.js';\nexport type K${i} = T${i};`).join('\n');
  const options: ts.CompilerOptions = { module: ts.ModuleKind.NodeNext, moduleResolution: ts.ModuleResolutionKind.NodeNext, strict: true, noEmit: true, skipLibCheck: true, types: [] };
  const host = ts.createCompilerHost(options);
  const readFile = host.readFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  host.readFile = (f) => (f === entry ? text : readFile(f));
  host.fileExists = (f) => f === entry || fileExists(f);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (f, lang, ...rest) => (f === entry ? ts.createSourceFile(f, text, lang) : getSourceFile(f, lang, ...rest));
  const program = ts.createProgram([entry], options, host);
  const checker = program.getTypeChecker();
  const sf = program.getSourceFile(entry)!;
  const diags = ts.getPreEmitDiagnostics(program, sf);
  if (diags.length > 0) throw new Error(`strict: ${ts.flattenDiagnosticMessageText(diags[0]!.messageText, '\n')}`);
  const types = new Map<string, ts.Type>();
  for (const stmt of sf.statements) {
    if (ts.isTypeAliasDeclaration(stmt)) types.set(keys[Number(stmt.name.text.slice(1))]!, checker.getTypeAtLocation(stmt.name));
  }
  loaded = { checker, types };
  return loaded;
}

const OPEN = ts.TypeFlags.Any | ts.TypeFlags.Unknown;

/** The object-like constituents of t (undefined and null dropped); undefined when the walk must stop. */
function shapes(t: ts.Type): ts.Type[] | undefined {
  const parts = t.isUnion() ? t.types : [t];
  if (parts.some((p) => (p.flags & OPEN) !== 0)) return undefined;
  return parts.filter((p) => (p.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)) === 0);
}

function walk(c: Checker, value: unknown, t: ts.Type, path: string, out: string[]): void {
  if (value === null || typeof value !== 'object') return;
  const parts = shapes(t);
  if (!parts) return;
  const { checker } = c;
  if (Array.isArray(value)) {
    const arr = parts.find((p) => checker.isArrayType(p) || checker.isTupleType(p));
    if (!arr) {
      out.push(`${path}: a list where the schema has no list`);
      return;
    }
    const el = checker.getTypeArguments(arr as ts.TypeReference)[0]!;
    value.forEach((v, i) => walk(c, v, el, `${path}[${i}]`, out));
    return;
  }
  let objs = parts.filter((p) => (p.flags & ts.TypeFlags.Object) !== 0 && !checker.isArrayType(p));
  const declared = objs.filter((o) => checker.getPropertiesOfType(o).length > 0 || checker.getIndexInfoOfType(o, ts.IndexKind.String));
  if (objs.length > 0 && declared.length === 0) {
    // An empty interface: the generator's stand-in for a Go type with custom JSON. The
    // schema unions (items, additionalProperties) hold a schema node when they hold an
    // object; anything else empty is open.
    if (!objs.some((o) => /JSONSchemaPropsOr(Array|Bool)$/.test(o.symbol?.getName() ?? ''))) return;
    objs = [c.types.get(SCHEMA_PROPS)!];
  }
  if (objs.length === 0) {
    out.push(`${path}: an object where the schema has ${parts.map((p) => checker.typeToString(p)).join(' | ')}`);
    return;
  }
  for (const [key, v] of Object.entries(value)) {
    const here = `${path}.${key}`;
    let found: ts.Type | undefined;
    for (const o of objs) {
      const prop = checker.getPropertyOfType(o, key);
      if (prop) {
        found = checker.getTypeOfSymbol(prop);
        break;
      }
      const index = checker.getIndexInfoOfType(o, ts.IndexKind.String);
      if (index) {
        found = index.type;
        break;
      }
    }
    if (!found) out.push(`${here}: unknown field`);
    else walk(c, v, found, here, out);
  }
}

/** Unknown fields of o, as "path: unknown field" lines; throws for a kind it does not know. */
export function unknownFields(o: Obj): string[] {
  const c = load();
  const t = c.types.get(typeKey(o));
  if (!t) throw new Error(`strict: no type for ${typeKey(o)}`);
  const out: string[] = [];
  walk(c, o, t, o.kind, out);
  return out;
}

/** The kubernetes-models class for o (validate() throws on a schema violation). */
export function modelOf(o: Obj): { validate(): void } {
  const [mod, iface] = TYPES[typeKey(o)] ?? [];
  if (!mod) throw new Error(`no kubernetes-models class for ${typeKey(o)}`);
  // require, not import(): a template literal import() is beyond the bundler's static analysis.
  const m = require(`kubernetes-models/${mod}`) as Record<string, new (d: unknown) => { validate(): void }>;
  const data = typeKey(o) === `${o.apiVersion}/${o.kind}` ? o : { ...o, apiVersion: 'policy/v1' };
  return new m[iface!.slice(1)]!(data);
}
