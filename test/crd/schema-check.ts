/**
 * Test-side tools for the CRD schemas: an ajv validator that behaves as the API
 * server does on what it checks (int-or-string, nullable, list-map keys unique;
 * x-kubernetes-* otherwise ignored), optionally "strict" (unknown fields refused, as
 * fieldValidation=Strict on 1.25+ does; 1.20 drops them silently), and a structural
 * lint stricter than the API server's.
 */
import { Ajv, type ValidateFunction } from 'ajv';
import * as ajvFormats from 'ajv-formats';
import { OPENAPI_KEYS, type OpenApiSchema } from '../../src/config/openapi.js';
import type { CustomResourceDefinition } from '../../src/crd/crd.js';

// ajv-formats is CommonJS with `exports.default`: from ESM the plugin is the default of the default.
const addFormats = ajvFormats.default as unknown as (ajv: Ajv) => Ajv;

type Json = Record<string, unknown>;

/** The JSON type(s) ajv checks for a node: int-or-string is either, nullable adds null. */
function ajvType(s: OpenApiSchema): string | string[] | undefined {
  const type: string[] = s['x-kubernetes-int-or-string'] ? ['integer', 'string'] : s.type ? [s.type] : [];
  if (type.length > 0 && s.nullable) type.push('null');
  return type.length === 0 ? undefined : type.length === 1 ? type[0] : type;
}

function mapProperties(props: Record<string, OpenApiSchema>, strict: boolean, path: string): Json {
  return Object.fromEntries(Object.entries(props).map(([name, p]) => [name, toAjvSchema(p, strict, `${path}.${name}`)]));
}

/** The CRD schema as plain JSON Schema for ajv. */
export function toAjvSchema(s: OpenApiSchema, strict: boolean, path = ''): Json {
  const out: Json = {};
  for (const [k, v] of Object.entries(s)) {
    if (k === 'x-kubernetes-list-map-keys') out[k] = v; // our keyword below
    else if (k.startsWith('x-kubernetes-') || k === 'nullable' || k === 'description') continue;
    else if (k === 'properties') out.properties = mapProperties(v as Record<string, OpenApiSchema>, strict, path);
    else if (k === 'items' || k === 'additionalProperties') out[k] = toAjvSchema(v as OpenApiSchema, strict, `${path}[]`);
    else if (k === 'anyOf') out.anyOf = (v as OpenApiSchema[]).map((b) => toAjvSchema(b, false, path));
    else out[k] = v;
  }
  const type = ajvType(s);
  if (type) out.type = type;
  // Root metadata is ObjectMeta (labels, ownerReferences, ...): only its name is ours to check.
  const isObjectMeta = path === '.metadata';
  if (strict && s.type === 'object' && s.properties && !s.additionalProperties && !isObjectMeta) out.additionalProperties = false;
  return out;
}

export function makeAjv(): Ajv {
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  ajv.addKeyword({
    keyword: 'x-kubernetes-list-map-keys',
    type: 'array',
    schemaType: 'array',
    // The API server refuses two list entries with the same key values.
    validate: (keys: string[], data: unknown[]) => {
      const seen = new Set(data.map((e) => JSON.stringify(keys.map((key) => (e as Json)[key]))));
      return seen.size === data.length;
    },
  });
  return ajv;
}

export function crdValidator(crd: CustomResourceDefinition, strict: boolean): ValidateFunction {
  return makeAjv().compile(toAjvSchema(crd.spec.versions[0]!.schema.openAPIV3Schema, strict));
}

export interface Node {
  path: string;
  schema: OpenApiSchema;
  /** A value of `properties` (a field kubectl explain shows). */
  isProperty: boolean;
  /** Inside anyOf: value checks only. */
  inJunctor: boolean;
}

export function* walk(s: OpenApiSchema, path = '', isProperty = false, inJunctor = false): Generator<Node> {
  yield { path, schema: s, isProperty, inJunctor };
  for (const [name, p] of Object.entries(s.properties ?? {})) yield* walk(p, `${path}.${name}`, true, inJunctor);
  if (s.items) yield* walk(s.items, `${path}[]`, false, inJunctor);
  if (s.additionalProperties) yield* walk(s.additionalProperties, `${path}{}`, false, inJunctor);
  for (const [i, b] of (s.anyOf ?? []).entries()) yield* walk(b, `${path}.anyOf[${i}]`, false, true);
}

const JUNCTOR_FORBIDDEN = ['type', 'description', 'default', 'nullable', 'additionalProperties', 'format'];

type Rule = (n: Node) => (string | false)[];

const intOrString = (s: OpenApiSchema): boolean => s['x-kubernetes-int-or-string'] === true;
// apiVersion and kind are the API server's to check; metadata's name is ObjectMeta's to describe.
const isTypeMeta = (n: Node): boolean => n.path === '.apiVersion' || n.path === '.kind';

/** The rules for a node outside anyOf, each a list of problems (false = none). */
const RULES: Rule[] = [
  ({ schema: s }) => [!s.type && !intOrString(s) && 'no type', !!s.type && intOrString(s) && 'int-or-string with a type'],
  // 1.20 publishes a nullable field without its type: kubectl explain would show neither it nor its fields.
  ({ schema: s }) => [s.nullable !== undefined && 'nullable (pruning drops nulls; see src/crd/wire.ts)'],
  (n) => [n.isProperty && !n.schema.description && !n.path.startsWith('.metadata') && 'no description'],
  ({ schema: s }) => [s.type === 'array' && !s.items && 'array without items', s.type === 'array' && s.maxItems === undefined && 'array without maxItems'],
  ({ schema: s }) => [
    s.type === 'object' && !s.properties && !s.additionalProperties && 'object without properties (would need preserve-unknown-fields)',
    s.type === 'object' && !!s.additionalProperties && s.maxProperties === undefined && 'map without maxProperties',
  ],
  (n) => {
    const s = n.schema;
    const bounded = s.maxLength !== undefined || !!s.enum || s.format === 'date-time' || isTypeMeta(n);
    return [(s.type === 'string' || intOrString(s)) && !bounded && 'unbounded string'];
  },
  ({ schema: s }) => (s.required ?? []).map((r) => !s.properties?.[r] && `required ${r} is not a property`),
  ({ schema: s }) =>
    (s.anyOf ?? []).flatMap((b) => Object.keys(b.properties ?? {}).map((k) => !s.properties?.[k] && `anyOf names ${k}, which is not a property here`)),
  ({ schema: s }) => listMapProblems(s),
  ({ schema: s }) => (s.enum && s.type ? s.enum.map((v) => typeof v !== (s.type === 'integer' ? 'number' : s.type) && `enum value ${String(v)} is not a ${s.type}`) : []),
];

function listMapProblems(s: OpenApiSchema): (string | false)[] {
  if (s['x-kubernetes-list-type'] !== 'map') return [];
  const keys = s['x-kubernetes-list-map-keys'] ?? [];
  return [
    keys.length === 0 && 'list-map without keys',
    ...keys.map((k) => {
      const prop = s.items?.properties?.[k];
      if (!prop) return `list-map key ${k} is not an item property`;
      return !s.items?.required?.includes(k) && prop.default === undefined && `list-map key ${k} neither required nor defaulted`;
    }),
  ];
}

/** Every problem of one schema node. */
export function nodeProblems(n: Node): string[] {
  const s = n.schema;
  const unknown = Object.keys(s).filter((k) => !OPENAPI_KEYS.has(k)).map((k) => `unknown key ${k}`);
  if (n.inJunctor) {
    const misplaced = Object.keys(s).filter((k) => JUNCTOR_FORBIDDEN.includes(k) || k.startsWith('x-kubernetes-'));
    return [...unknown, ...misplaced.map((k) => `${k} inside anyOf`)];
  }
  return [...unknown, ...RULES.flatMap((rule) => rule(n)).filter((p): p is string => p !== false)];
}

/** All problems of a CRD schema, as "path: problem" lines. */
export function structuralProblems(root: OpenApiSchema): string[] {
  const out: string[] = [];
  // The API server allows metadata to restrict name and generateName, and to say nothing else.
  const meta = root.properties?.metadata;
  if (meta) {
    for (const k of Object.keys(meta)) if (k !== 'type' && k !== 'properties') out.push(`.metadata: ${k} is not allowed on metadata`);
    for (const k of Object.keys(meta.properties ?? {})) if (k !== 'name' && k !== 'generateName') out.push(`.metadata.${k}: not allowed`);
  }
  for (const n of walk(root)) for (const problem of nodeProblems(n)) out.push(`${n.path || '(root)'}: ${problem}`);
  // Defaults must pass their own schema, as the API server requires of a CRD.
  const ajv = makeAjv();
  for (const n of walk(root)) {
    if (n.schema.default === undefined || n.inJunctor) continue;
    const ok = ajv.validate(toAjvSchema(n.schema, true), n.schema.default);
    if (!ok) out.push(`${n.path}: default ${JSON.stringify(n.schema.default)} does not validate`);
  }
  return out;
}
