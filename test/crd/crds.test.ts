// The CRDs as Kubernetes sees them: valid CustomResourceDefinitions for current
// Kubernetes (kubernetes-models 4.5.1, schema v1.33), structural, and shaped as the
// issue asks (names, columns, subresources, bounds).
import { CustomResourceDefinition } from 'kubernetes-models/apiextensions.k8s.io/v1';
import { describe, expect, it } from 'vitest';
import { CONTAINER_FIELDS, SETTINGS_FIELDS } from '../../src/config/schema.js';
import type { OpenApiSchema } from '../../src/config/openapi.js';
import type { CustomResourceDefinition as Crd } from '../../src/crd/crd.js';
import { fdStoreCrd } from '../../src/crd/fdstore.js';
import { fdStorePolicyCrd } from '../../src/crd/policy.js';
import { crdFiles } from '../../src/crd/render.js';
import { STATUS_FD_GROUPS_MAX } from '../../src/status/types.js';
import { structuralProblems, walk } from './schema-check.js';

const schemaOf = (crd: Crd): OpenApiSchema => crd.spec.versions[0]!.schema.openAPIV3Schema;

function at(s: OpenApiSchema, path: string): OpenApiSchema {
  let cur = s;
  for (const part of path.split('.')) {
    const next = part === '[]' ? cur.items : cur.properties?.[part];
    if (!next) throw new Error(`no ${part} in ${path}`);
    cur = next;
  }
  return cur;
}

describe.each(crdFiles().map((f) => [f.crd.spec.names.kind, f.crd] as const))('%s', (_kind, crd) => {
  it('validates as a CustomResourceDefinition (kubernetes-models 4.5.1)', () => {
    expect(() => new CustomResourceDefinition(crd as never).validate()).not.toThrow();
  });

  it('is structural and bounded: types, descriptions, known keys only, maxItems on lists, no preserve-unknown-fields', () => {
    expect(structuralProblems(schemaOf(crd))).toEqual([]);
  });

  it('is namespaced, in the fdstore-dev category, served and stored as v1alpha1 with a status subresource', () => {
    expect(crd.spec.scope).toBe('Namespaced');
    expect(crd.spec.group).toBe('fdstore.dev');
    expect(crd.spec.names.categories).toEqual(['fdstore-dev']);
    // A category equal to a singular name would shadow it in kubectl (describe fdstore POD).
    for (const c of crdFiles()) expect(crd.spec.names.categories).not.toContain(c.crd.spec.names.singular);
    expect(crd.spec.versions.map((v) => [v.name, v.served, v.storage, v.subresources])).toEqual([['v1alpha1', true, true, { status: {} }]]);
    expect(crd.metadata.name).toBe(`${crd.spec.names.plural}.fdstore.dev`);
  });

  it('declares AGE itself (columns replace the default ones) and every column has a description', () => {
    const cols = crd.spec.versions[0]!.additionalPrinterColumns;
    expect(cols.at(-1)).toMatchObject({ name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' });
    for (const c of cols) expect(c.description.length).toBeGreaterThan(10);
  });
});

describe('the checks can fail', () => {
  it('kubernetes-models refuses a CRD without a plural name or with a bad scope', () => {
    const noPlural = JSON.parse(JSON.stringify(fdStoreCrd()));
    delete noPlural.spec.names.plural;
    expect(() => new CustomResourceDefinition(noPlural).validate()).toThrow(/plural/);
    const badScope = { ...fdStoreCrd(), spec: { ...fdStoreCrd().spec, scope: 42 } };
    expect(() => new CustomResourceDefinition(badScope as never).validate()).toThrow(/scope/);
  });

  it('finds a missing description, an unknown key, an unbounded list, a type inside anyOf', () => {
    const bad: OpenApiSchema = {
      type: 'object',
      description: 'x',
      properties: {
        a: { type: 'string', maxLength: 3 },
        b: { type: 'array', description: 'b', items: { type: 'integer' } },
        c: { type: 'integer', description: 'c', maxItem: 3 } as OpenApiSchema,
        d: { type: 'string', description: 'd' },
      },
      anyOf: [{ type: 'object', properties: { e: { enum: ['x'] } } }],
    };
    expect(structuralProblems(bad)).toEqual([
      '(root): anyOf names e, which is not a property here',
      '.a: no description',
      '.b: array without maxItems',
      '.c: unknown key maxItem',
      '.d: unbounded string',
      '.anyOf[0]: type inside anyOf',
    ]);
  });
});

describe('FdStorePolicy', () => {
  const crd = fdStorePolicyCrd();
  const s = schemaOf(crd);

  it('fdp, columns PODS ACCEPTED (PRIORITY with -o wide) AGE', () => {
    expect(crd.spec.names).toMatchObject({ kind: 'FdStorePolicy', plural: 'fdstorepolicies', shortNames: ['fdp'] });
    const cols = crd.spec.versions[0]!.additionalPrinterColumns;
    expect(cols.map((c) => [c.name.toUpperCase(), c.jsonPath, c.priority ?? 0])).toEqual([
      ['PODS', '.status.pods', 0],
      ['ACCEPTED', '.status.conditions[?(@.type=="Accepted")].status', 0],
      ['PRIORITY', '.spec.priority', 1],
      ['AGE', '.metadata.creationTimestamp', 0],
    ]);
  });

  it('spec.defaults has exactly the settings, spec.containers[] the settings and name, as a list-map by name', () => {
    expect(Object.keys(at(s, 'spec.defaults').properties!)).toEqual([...SETTINGS_FIELDS]);
    expect(Object.keys(at(s, 'spec.containers.[]').properties!)).toEqual([...CONTAINER_FIELDS]);
    expect(at(s, 'spec.containers')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['name'] });
  });

  it('no settings field has a default: unset must fall through to defaults and the agent flags', () => {
    for (const path of ['spec.defaults', 'spec.containers.[]']) {
      for (const [name, p] of Object.entries(at(s, path).properties!)) expect([name, p.default]).toEqual([name, undefined]);
    }
  });

  it('priority is an int32 defaulting to 0; injection.enabled defaults to false', () => {
    expect(at(s, 'spec.priority')).toMatchObject({ type: 'integer', format: 'int32', default: 0 });
    expect(at(s, 'spec.injection.enabled')).toMatchObject({ type: 'boolean', default: false });
  });

  it('status: observedGeneration, conditions as a list-map by type, pods, conflicts bounded at 50 + conflictsOmitted', () => {
    expect(Object.keys(at(s, 'status').properties!)).toEqual(['observedGeneration', 'conditions', 'pods', 'conflicts', 'conflictsOmitted']);
    expect(at(s, 'status.conditions')).toMatchObject({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] });
    expect(at(s, 'status.conflicts').maxItems).toBe(50);
    expect(Object.keys(at(s, 'status.conflicts.[]').properties!)).toEqual(['pod', 'winner']);
  });

  it('metav1.Condition as KUBE-NOTES §4 has it', () => {
    const c = at(s, 'status.conditions.[]');
    expect(c.required!.sort()).toEqual(['lastTransitionTime', 'message', 'reason', 'status', 'type']);
    expect(c.properties!.type).toMatchObject({ maxLength: 316 });
    expect(c.properties!.status!.enum).toEqual(['True', 'False', 'Unknown']);
    expect(c.properties!.reason).toMatchObject({ minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' });
    expect(c.properties!.message).toMatchObject({ maxLength: 32768 });
    expect(c.properties!.observedGeneration).toMatchObject({ type: 'integer', format: 'int64', minimum: 0 });
    expect(c.properties!.lastTransitionTime).toMatchObject({ type: 'string', format: 'date-time' });
  });

  it('a label selector with the four operators', () => {
    expect(at(s, 'spec.selector.matchExpressions.[].operator').enum).toEqual(['In', 'NotIn', 'Exists', 'DoesNotExist']);
    expect(at(s, 'spec.selector.matchLabels').additionalProperties).toMatchObject({ type: 'string', maxLength: 63 });
  });
});

describe('FdStore', () => {
  const crd = fdStoreCrd();
  const s = schemaOf(crd);

  it('fds, columns exactly READY FDS RESTORES POLICY AGE', () => {
    expect(crd.spec.names).toMatchObject({ kind: 'FdStore', plural: 'fdstores', shortNames: ['fds'] });
    const cols = crd.spec.versions[0]!.additionalPrinterColumns;
    expect(cols.map((c) => [c.name.toUpperCase(), c.type, c.jsonPath, c.priority ?? 0])).toEqual([
      ['READY', 'string', '.status.readySummary', 0],
      ['FDS', 'integer', '.status.stored', 0],
      ['RESTORES', 'integer', '.status.restores', 0],
      ['POLICY', 'string', '.status.policy.name', 0],
      ['AGE', 'date', '.metadata.creationTimestamp', 0],
    ]);
  });

  it('every column path exists in the schema', () => {
    for (const c of crd.spec.versions[0]!.additionalPrinterColumns) {
      if (c.jsonPath.startsWith('.metadata')) continue;
      expect(() => at(s, c.jsonPath.slice(1))).not.toThrow();
    }
  });

  it('has no spec, and named like a pod (DNS-1123 subdomain, 253)', () => {
    expect(s.properties!.spec).toBeUndefined();
    expect(at(s, 'metadata.name')).toMatchObject({ maxLength: 253 });
  });

  it('fdGroups bounded by STATUS_FD_GROUPS_MAX; status text by STATUS_TEXT_MAX; every list bounded', () => {
    expect(at(s, 'status.containers.[].fdGroups').maxItems).toBe(STATUS_FD_GROUPS_MAX);
    expect(at(s, 'status.containers.[].status')).toMatchObject({ maxLength: 256 });
    for (const n of walk(s)) if (n.schema.type === 'array') expect([n.path, n.schema.maxItems]).toEqual([n.path, expect.any(Number)]);
  });

  it('conditions document Ready, ConfigApplied and StoreLost', () => {
    const d = at(s, 'status.conditions').description!;
    for (const t of ['Ready:', 'ConfigApplied:', 'StoreLost:']) expect(d).toContain(t);
  });
});
