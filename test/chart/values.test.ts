// helm lint --strict, values.yaml documented key by key, and values.schema.json: closed
// at every level (an unknown or misspelled key fails helm template/install), in step
// with values.yaml, and refusing wrong types.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { CHART, helm, template } from './helm.js';

type Schema = { type?: string | string[]; properties?: Record<string, Schema>; additionalProperties?: boolean | Schema; items?: Schema };
const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')) as Schema;
const valuesText = readFileSync(join(CHART, 'values.yaml'), 'utf8');
const values = parse(valuesText) as Record<string, unknown>;

/**
 * Objects whose keys are free by nature: string maps (labels, annotations,
 * nodeSelector), resource quantities, and Kubernetes objects passed through (affinity
 * terms), which the API server checks, and test/chart's strict pass on the render.
 */
const OPEN_MAPS = [
  /^\.global$/,
  /\.(labels|annotations|podAnnotations|podLabels|nodeSelector|matchLabels)$/,
  /\.resources\.(requests|limits)$/,
  /\.affinity\.(nodeAffinity|podAffinity|podAntiAffinity)$/,
  // LabelSelectors and a cert-manager issuerRef, passed through to the API server
  /\.(namespaceSelector|objectSelector|issuerRef)$/,
];

function* objectNodes(s: Schema, path = ''): Generator<[string, Schema]> {
  const types = Array.isArray(s.type) ? s.type : [s.type];
  if (types.includes('object')) yield [path, s];
  for (const [k, p] of Object.entries(s.properties ?? {})) yield* objectNodes(p, `${path}.${k}`);
  if (s.items) yield* objectNodes(s.items, `${path}[]`);
}

/** Key paths of a values object (maps of OPEN_MAPS are leaves). */
function keyPaths(v: unknown, path = ''): string[] {
  if (v === null || typeof v !== 'object' || Array.isArray(v) || OPEN_MAPS.some((r) => r.test(path))) return [];
  return Object.entries(v).flatMap(([k, x]) => [`${path}.${k}`, ...keyPaths(x, `${path}.${k}`)]);
}
function schemaPaths(s: Schema, path = ''): string[] {
  if (OPEN_MAPS.some((r) => r.test(path))) return [];
  return Object.entries(s.properties ?? {}).flatMap(([k, p]) => [`${path}.${k}`, ...schemaPaths(p, `${path}.${k}`)]);
}

describe('helm lint --strict', () => {
  it.each([
    ['defaults', []],
    ['everything on', ['--set', 'example.enabled=true,dashboard.enabled=true,monitoring.podMonitor.enabled=true,monitoring.serviceMonitor.enabled=true']],
    ['no operator, no CRDs', ['--set', 'operator.enabled=false,crds.enabled=false']],
  ])('%s: passes', (_what, args) => {
    const r = helm(['lint', '--strict', CHART, ...args]);
    expect([r.code, r.stdout]).toEqual([0, expect.stringContaining('0 chart(s) failed')]);
  });

  it('fails on a template error (the check can fail)', () => {
    const r = helm(['lint', '--strict', CHART, '--set', 'sidecar.mode=bogus']);
    expect(r.code).not.toBe(0);
  });
});

describe('values.schema.json', () => {
  it('every object is closed (additionalProperties: false) except the free maps', () => {
    const open = [...objectNodes(schema)].filter(([, s]) => s.additionalProperties !== false).map(([p]) => p);
    expect(open.filter((p) => !OPEN_MAPS.some((r) => r.test(p)))).toEqual([]);
    // and each free map still types its values
    for (const [p, s] of objectNodes(schema)) if (OPEN_MAPS.some((r) => r.test(p)) && !/\.affinity\.|^\.global$|Selector$|issuerRef$/.test(p)) expect([p, typeof s.additionalProperties]).toEqual([p, 'object']);
  });

  it('names exactly the keys of values.yaml (and global, which Helm gives a subchart, and the three fields of an affinity)', () => {
    expect(schemaPaths(schema).filter((p) => p !== '.global' && !/\.affinity\./.test(p)).sort()).toEqual(keyPaths(values).sort());
  });

  it.each([
    ['an unknown top-level key', { bogus: 1 }, "additional properties 'bogus' not allowed"],
    ['a misspelled nested key', { operator: { replicass: 3 } }, "additional properties 'replicass' not allowed"],
    ['a misspelled deep key', { sidecar: { appProbes: { liveness: { perodSeconds: 5 } } } }, "additional properties 'perodSeconds' not allowed"],
    ['a wrong type', { operator: { replicas: 'two' } }, '/operator/replicas'],
    ['an unknown mode', { sidecar: { mode: 'sidecar' } }, '/sidecar/mode'],
    ['a root uid', { sidecar: { uid: 0 } }, '/sidecar/uid'],
    ['an unknown pull policy', { image: { pullPolicy: 'Sometimes' } }, '/image/pullPolicy'],
  ])('refuses %s: helm template exits non-zero', (_what, vals, message) => {
    const r = template({ values: vals });
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(message)]);
  });
});

describe('values.yaml', () => {
  it('documents every key: a comment on the line(s) above it', () => {
    const lines = valuesText.split('\n');
    const undocumented = lines.flatMap((line, i) => {
      if (!/^\s*[A-Za-z_][\w-]*:/.test(line)) return [];
      return /^\s*#/.test(lines[i - 1] ?? '') ? [] : [`${i + 1}: ${line.trim()}`];
    });
    // keys inside a free map (resource quantities, the default grafana label) are its value, documented with it
    expect(undocumented.filter((l) => !/: (requests|limits|cpu|memory|grafana_dashboard|matchExpressions|operator|values):/.test(l))).toEqual([]);
  });

  it('README.md\'s table lists every key', () => {
    const readme = readFileSync(join(CHART, 'README.md'), 'utf8');
    // resources as one row (its requests and limits are the default's value)
    const all = keyPaths(values).filter((p) => !/\.resources\./.test(p));
    const leaves = all.filter((p) => !all.some((q) => q.startsWith(`${p}.`)));
    expect(leaves.length).toBeGreaterThan(60);
    expect(leaves.filter((p) => !readme.includes(`| \`${p.slice(1)}\` |`))).toEqual([]);
  });

  it('defaults: operator, PDB and CRDs on; monitors, dashboard and example off; mode auto; image tag empty (appVersion)', () => {
    expect(values).toMatchObject({
      crds: { enabled: true, keep: true },
      operator: { enabled: true, replicas: 2, podDisruptionBudget: { enabled: true } },
      monitoring: { serviceMonitor: { enabled: false }, podMonitor: { enabled: false } },
      dashboard: { enabled: false, labels: { grafana_dashboard: '1' } },
      example: { enabled: false },
      sidecar: { mode: 'auto', uid: 64919, port: 9721 },
      image: { tag: '' },
    });
  });
});
