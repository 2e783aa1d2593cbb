// The validators of the chart tests can fail: the strict pass finds unknown fields
// (what kubernetes-models accepts and a 1.20 API server drops), kubernetes-models finds
// wrong types and missing fields, the monitors' schema finds unknown fields.
import { describe, expect, it } from 'vitest';
import { one, render, type Obj } from './helm.js';
import { monitorErrors } from './monitors.js';
import { modelOf, unknownFields } from './strict.js';

const objs = render({ values: { example: { enabled: true }, monitoring: { podMonitor: { enabled: true }, serviceMonitor: { enabled: true } } } });
const copy = (kind: string, suffix = ''): Obj => structuredClone(one(objs, kind, suffix));

describe('the strict pass', () => {
  it('finds a misspelled field at any depth, and restartPolicy misplaced', () => {
    const d = copy('Deployment', '-example');
    const pod = d.spec.template.spec;
    pod.containers[0].livenessProbe.httpGet.paht = '/livez/app';
    pod.initContainers[0].restartpolicy = 'Always';
    pod.volumes[1].downwardAPI.itemz = [];
    d.spec.strategy = { rollingupdate: {} };
    expect(unknownFields(d).sort()).toEqual([
      'Deployment.spec.strategy.rollingupdate: unknown field',
      'Deployment.spec.template.spec.containers[0].livenessProbe.httpGet.paht: unknown field',
      'Deployment.spec.template.spec.initContainers[0].restartpolicy: unknown field',
      'Deployment.spec.template.spec.volumes[1].downwardAPI.itemz: unknown field',
    ]);
  });

  it('takes any key in a map (labels, annotations, ConfigMap data)', () => {
    const d = copy('Deployment', '-example');
    d.spec.template.metadata.labels['any/key'] = 'x';
    d.metadata.annotations = { 'a.b/c': 'd' };
    expect(unknownFields(d)).toEqual([]);
  });

  it('walks a CRD schema as JSONSchemaProps (items, additionalProperties)', () => {
    const crd = copy('CustomResourceDefinition', 'fdstorepolicies.fdstore.dev');
    const spec = crd.spec.versions[0].schema.openAPIV3Schema.properties.spec;
    spec.properties.containers.items.maxItem = 3;
    spec.properties.selector.properties.matchLabels.additionalProperties.maxLenght = 63;
    const found = unknownFields(crd);
    expect(found).toHaveLength(2);
    expect(found).toEqual(expect.arrayContaining([
      expect.stringMatching(/\.spec\.properties\.selector\.properties\.matchLabels\.additionalProperties\.maxLenght: unknown field$/),
      expect.stringMatching(/\.spec\.properties\.containers\.items\.maxItem: unknown field$/),
    ]));
  });
});

describe('kubernetes-models', () => {
  it('refuses a wrong type and a missing required field', () => {
    const d = copy('Deployment', '-operator');
    d.spec.replicas = 'two';
    expect(() => modelOf(d).validate()).toThrow(/replicas/);
    const n = copy('Deployment', '-operator');
    delete n.spec.template.spec.containers[0].name;
    expect(() => modelOf(n).validate()).toThrow(/name/);
  });

  it('checks a 1.20 policy/v1beta1 PodDisruptionBudget as policy/v1 (gone from the v1.33 schema)', () => {
    const pdb = one(render({ kube: '1.20.0' }), 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe('policy/v1beta1');
    expect(() => modelOf(pdb).validate()).not.toThrow();
    expect(() => modelOf({ ...pdb, spec: { ...pdb.spec, maxUnavailable: { n: 1 } } }).validate()).toThrow();
  });
});

describe('the monitors\' schema', () => {
  it('accepts the rendered ones and refuses an unknown field or a missing selector', () => {
    expect(monitorErrors(one(objs, 'PodMonitor'))).toEqual([]);
    expect(monitorErrors(one(objs, 'ServiceMonitor'))).toEqual([]);
    const pm = copy('PodMonitor');
    pm.spec.podMetricsEndpoints[0].intervall = '5s';
    expect(monitorErrors(pm)).toEqual(['/spec/podMetricsEndpoints/0 must NOT have additional properties intervall']);
    const sm = copy('ServiceMonitor');
    delete sm.spec.selector;
    expect(monitorErrors(sm)).toEqual(["/spec must have required property 'selector'"]);
  });
});
