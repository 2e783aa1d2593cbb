// helm template of charts/fdstore, both states of every toggle, at Kubernetes 1.20
// (the test cluster; classic sidecars, policy/v1beta1) and 1.30 (native sidecars):
// kinds, the operator's Deployment, PDB, RBAC, Service, monitors, dashboard, CRDs,
// every object valid (kubernetes-models) and closed (no unknown field).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { expectHardened, expectValid, podSpecs } from './check.js';
import { CHART, REPO, byKind, kinds, notes, one, render, template, type Obj } from './helm.js';

const KUBES = ['1.20.0', '1.30.0'];
const ALL_ON = {
  monitoring: { serviceMonitor: { enabled: true }, podMonitor: { enabled: true } },
  dashboard: { enabled: true },
  example: { enabled: true },
};
const OPERATOR_KINDS = ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'Lease', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'];
/** The injector (injector.enabled, default on): its webhook configuration and the Secret with the chart's certificate. */
const INJECTOR_KINDS = ['MutatingWebhookConfiguration', 'Secret'];

const operator = (objs: Obj[]): Obj => one(objs, 'Deployment', '-operator');
const opContainer = (objs: Obj[]): Obj => operator(objs).spec.template.spec.containers[0];

describe.each(KUBES)('Kubernetes %s', (kube) => {
  const defaults = render({ kube });
  const allOn = render({ kube, values: ALL_ON });

  it('defaults: the CRDs and the operator, nothing else (monitors, dashboard, example off)', () => {
    expect(kinds(defaults)).toEqual([...OPERATOR_KINDS, ...INJECTOR_KINDS, 'CustomResourceDefinition', 'CustomResourceDefinition'].sort());
  });

  it('every object of the default and the all-on render is valid and has no unknown field', () => {
    expectValid(defaults);
    expectValid(allOn);
  });

  it('all on: ServiceMonitor, PodMonitor, the dashboard ConfigMap and the example (Deployment, Service, ConfigMap) as well', () => {
    const extra = kinds(allOn).filter((k) => !kinds(defaults).includes(k) || k === 'Deployment' || k === 'Service');
    expect(extra.sort()).toEqual(['ConfigMap', 'ConfigMap', 'Deployment', 'Deployment', 'PodMonitor', 'Service', 'Service', 'ServiceMonitor']);
  });

  it('every pod is hardened: non-root, no capabilities, read-only root, seccomp RuntimeDefault', () => {
    for (const pod of podSpecs(allOn)) expectHardened(pod);
  });

  it(`the PodDisruptionBudget is ${kube === '1.20.0' ? 'policy/v1beta1' : 'policy/v1'} and selects the operator pods`, () => {
    const pdb = one(defaults, 'PodDisruptionBudget');
    expect(pdb.apiVersion).toBe(kube === '1.20.0' ? 'policy/v1beta1' : 'policy/v1');
    expect(pdb.spec).toEqual({ maxUnavailable: 1, selector: { matchLabels: operator(defaults).spec.selector.matchLabels } });
  });
});

describe('the operator', () => {
  const objs = render();
  const dep = operator(objs);
  const c = opContainer(objs);

  it('2 replicas of `fdstore operator`, the Lease in the release namespace (downward API), --http on 9722', () => {
    expect(dep.spec.replicas).toBe(2);
    expect(c.image).toBe('localhost/fdstore:0.1.0');
    expect(c.args).toEqual(['operator', '--lease-namespace', '$(POD_NAMESPACE)', '--lease-name', 'fdstore-operator', '--identity', '$(POD_NAME)',
      '--http', '0.0.0.0:9722', '--log-level', 'info', '--webhook', '0.0.0.0:9443', '--inject-mode', 'auto', '--inject-sidecar', expect.stringMatching(/^\{"appProbes":/)]);
    expect(c.env).toEqual([
      { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
      { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
    ]);
    expect(c.ports).toEqual([{ name: 'http-metrics', containerPort: 9722, protocol: 'TCP' }, { name: 'webhook', containerPort: 9443, protocol: 'TCP' }]);
  });

  it('liveness on /healthz, readiness on /readyz, resources set', () => {
    expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http-metrics' });
    expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http-metrics' });
    expect(c.resources).toEqual({ requests: { cpu: '50m', memory: '96Mi' }, limits: { memory: '256Mi' } });
  });

  it('watchNamespace, extraArgs, logLevel, replicas and the image reach the pod', () => {
    const o = render({ values: { operator: { watchNamespace: 'shop', extraArgs: ['--foo'], logLevel: 'debug', replicas: 3 }, image: { repository: 'localhost/fdstore', tag: 'dev', pullPolicy: 'Never' } } });
    const oc = opContainer(o);
    expect(oc.args).toEqual(expect.arrayContaining(['--namespace', 'shop', '--foo']));
    expect(oc.args.slice(oc.args.indexOf('--log-level'), oc.args.indexOf('--log-level') + 2)).toEqual(['--log-level', 'debug']);
    expect([operator(o).spec.replicas, oc.image, oc.imagePullPolicy]).toEqual([3, 'localhost/fdstore:dev', 'Never']);
  });

  it('runs as the ServiceAccount the bindings name; the ClusterRole and Role rules are those of files/operator-rbac.yaml', () => {
    const sa = one(objs, 'ServiceAccount');
    expect(dep.spec.template.spec.serviceAccountName).toBe(sa.metadata.name);
    const file = parseAllDocuments(readFileSync(join(CHART, 'files', 'operator-rbac.yaml'), 'utf8')).map((d) => d.toJS() as Obj);
    for (const [role, binding] of [['ClusterRole', 'ClusterRoleBinding'], ['Role', 'RoleBinding']] as const) {
      const r = one(objs, role);
      expect(r.rules).toEqual(file.find((d) => d.kind === role)!.rules);
      const b = one(objs, binding);
      expect(b.roleRef).toEqual({ apiGroup: 'rbac.authorization.k8s.io', kind: role, name: r.metadata.name });
      expect(b.subjects).toEqual([{ kind: 'ServiceAccount', name: sa.metadata.name, namespace: 'fds-system' }]);
    }
    expect(one(objs, 'Role').metadata.namespace).toBe('fds-system');
  });

  it('the Lease is the release\'s (helm uninstall deletes it), named as --lease-name, without a spec (the operator writes it)', () => {
    const lease = one(objs, 'Lease');
    expect([lease.metadata.name, lease.metadata.namespace, lease.spec]).toEqual([c.args[c.args.indexOf('--lease-name') + 1], 'fds-system', undefined]);
    const rules = one(objs, 'Role').rules as Obj[];
    expect(rules.some((r) => r.resources.includes('leases') && ['get', 'update'].every((v) => r.verbs.includes(v)))).toBe(true);
    expect(one(render({ values: { operator: { leaseName: 'other' } } }), 'Lease').metadata.name).toBe('other');
  });

  it('RBAC names carry the release (release "fdstore": the file\'s names)', () => {
    expect(byKind(objs, 'ClusterRole').map((r) => r.metadata.name)).toEqual(['rel-fdstore-operator']);
    const same = render({ release: 'fdstore' });
    expect([one(same, 'ClusterRole').metadata.name, one(same, 'Role').metadata.name]).toEqual(['fdstore-operator', 'fdstore-operator-leader-election']);
  });

  it('the Service selects the operator pods and targets the metrics port', () => {
    const svc = one(objs, 'Service');
    expect(svc.spec.selector).toEqual(dep.spec.template.metadata.labels && dep.spec.selector.matchLabels);
    expect(svc.spec.ports).toEqual([{ name: 'http-metrics', port: 9722, targetPort: 'http-metrics', protocol: 'TCP' }, { name: 'webhook', port: 443, targetPort: 'webhook', protocol: 'TCP' }]);
  });

  it('serviceAccount.create=false uses the named one; operator.enabled=false with crds off renders nothing', () => {
    const o = render({ values: { operator: { serviceAccount: { create: false, name: 'mine' } } } });
    expect(byKind(o, 'ServiceAccount')).toEqual([]);
    expect(operator(o).spec.template.spec.serviceAccountName).toBe('mine');
    expect(template({ values: { operator: { serviceAccount: { create: false } } } }).stderr).toContain('operator.serviceAccount.name');
    expect(render({ values: { operator: { enabled: false }, crds: { enabled: false } } })).toEqual([]);
  });

  it('podDisruptionBudget.enabled=false: no PDB', () => {
    expect(byKind(render({ values: { operator: { podDisruptionBudget: { enabled: false } } } }), 'PodDisruptionBudget')).toEqual([]);
  });
});

describe('CRDs', () => {
  const fromRepo = ['fdstorepolicies.fdstore.dev.yaml', 'fdstores.fdstore.dev.yaml'].map((f) => parse(readFileSync(join(REPO, 'crds', f), 'utf8')) as Obj);
  const strip = (o: Obj): Obj => ({ ...o, metadata: { name: o.metadata.name } });

  it('crds.enabled (default): both, each equal to crds/ but for the release labels, kept on uninstall (crds.keep)', () => {
    const crds = byKind(render(), 'CustomResourceDefinition');
    expect(crds.map(strip)).toEqual(fromRepo);
    for (const c of crds) {
      expect(c.metadata.annotations).toEqual({ 'helm.sh/resource-policy': 'keep' });
      expect(c.metadata.labels['app.kubernetes.io/component']).toBe('crds');
    }
  });

  it('crds.keep=false: no resource policy; crds.enabled=false: no CRD', () => {
    const crds = byKind(render({ values: { crds: { keep: false } } }), 'CustomResourceDefinition');
    expect(crds.map((c) => c.metadata.annotations)).toEqual([undefined, undefined]);
    expect(crds.map(strip)).toEqual(fromRepo);
    expect(byKind(render({ values: { crds: { enabled: false } } }), 'CustomResourceDefinition')).toEqual([]);
  });
});

describe('monitoring', () => {
  const objs = render({ values: ALL_ON });

  it('the ServiceMonitor scrapes the operator Service\'s metrics port', () => {
    const sm = one(objs, 'ServiceMonitor');
    const svc = one(objs, 'Service', '-operator');
    expect(sm.spec.selector.matchLabels).toEqual(svc.spec.selector);
    expect(sm.spec.endpoints).toEqual([{ port: svc.spec.ports[0].name, path: '/metrics', interval: '30s' }]);
  });

  it('the PodMonitor selects enrolled pods in every namespace, on the agent\'s named port', () => {
    const pm = one(objs, 'PodMonitor');
    expect(pm.spec).toEqual({ selector: { matchLabels: { 'fdstore.dev/enrolled': 'true' } }, namespaceSelector: { any: true }, podMetricsEndpoints: [{ port: 'fdstore-http', path: '/metrics', interval: '30s' }] });
    const example = one(objs, 'Deployment', '-example').spec.template;
    expect(example.metadata.labels['fdstore.dev/enrolled']).toBe('true');
    const ports = [...example.spec.initContainers, ...example.spec.containers].flatMap((c: Obj) => c.ports ?? []).map((p: Obj) => p.name);
    expect(ports).toContain('fdstore-http');
  });

  it('labels and interval are values; a ServiceMonitor without the operator fails the render', () => {
    const o = render({ values: { monitoring: { podMonitor: { enabled: true, labels: { release: 'prom' }, interval: '10s', namespaces: ['shop'] } } } });
    const pm = one(o, 'PodMonitor');
    expect([pm.metadata.labels.release, pm.spec.podMetricsEndpoints[0].interval, pm.spec.namespaceSelector]).toEqual(['prom', '10s', { matchNames: ['shop'] }]);
    const r = template({ values: { operator: { enabled: false }, monitoring: { serviceMonitor: { enabled: true } } } });
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining('needs operator.enabled')]);
  });
});

describe('the dashboard', () => {
  it('a ConfigMap labelled grafana_dashboard: "1" holding files/dashboards/fdstore.json', () => {
    const cm = one(render({ values: { dashboard: { enabled: true, annotations: { grafana_folder: 'fdstore' } } } }), 'ConfigMap', '-dashboard');
    expect(cm.metadata.labels.grafana_dashboard).toBe('1');
    expect(cm.metadata.annotations).toEqual({ grafana_folder: 'fdstore' });
    expect(cm.data['fdstore.json']).toBe(readFileSync(join(CHART, 'files', 'dashboards', 'fdstore.json'), 'utf8'));
  });

  it('namespace and labels are values', () => {
    const cm = one(render({ values: { dashboard: { enabled: true, namespace: 'grafana', labels: { dash: 'yes' } } } }), 'ConfigMap', '-dashboard');
    // Helm merges maps: the default label stays unless set to null
    expect([cm.metadata.namespace, cm.metadata.labels.dash, cm.metadata.labels.grafana_dashboard]).toEqual(['grafana', 'yes', '1']);
    const other = one(render({ values: { dashboard: { enabled: true, labels: { grafana_dashboard: null, dash: 'yes' } } } }), 'ConfigMap', '-dashboard');
    expect([other.metadata.labels.dash, other.metadata.labels.grafana_dashboard]).toEqual(['yes', undefined]);
  });
});

describe('NOTES.txt (helm install --dry-run=client)', () => {
  it('says what to do next: add the sidecar, apply a policy, kubectl get fdstores', () => {
    const text = notes();
    for (const s of ['is installed in fds-system', 'rollout status deployment/rel-fdstore-operator', 'fdstore.sidecar', '/run/fdstore/fdstore-exec -- CMD',
      'kind: FdStorePolicy', 'kubectl get fdstores', 'kubectl exec POD -c fdstore -- fdstore ls', 'kept on uninstall']) expect(text).toContain(s);
    // helm's default kube version for a client-only dry run is its client's (>= 1.29): native
    expect(text).toMatch(/Sidecar mode on this cluster \(Kubernetes v1\.\d+\.\d+\): native\./);
    expect(text).not.toContain('The example is running');
  });

  it('follows the toggles: the example, no operator, CRDs not kept', () => {
    expect(notes({ example: { enabled: true } })).toContain('port-forward svc/rel-fdstore-example 8080:80');
    expect(notes({ operator: { enabled: false }, crds: { enabled: false } })).toContain('the operator is not part of this release');
    expect(notes({ crds: { keep: false } })).not.toContain('kept on uninstall');
  });
});
