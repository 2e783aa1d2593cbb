// The injector's core: the patch for a range of pods, applied with a JSON-patch
// library (fast-json-patch, RFC 6902) and the result checked against the Kubernetes
// Pod schema (kubernetes-models, v1.33) and for unknown fields; idempotent; never
// outside a policy, never kube-system or the operator's own pods.
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { keeperSocketPath } from '../../src/unit/layout.js';
import { inject, type InjectInput } from '../../src/inject/patch.js';
import { INJECTED_ANNOTATION } from '../../src/inject/decide.js';
import { modelOf, unknownFields } from '../chart/strict.js';
import { app, injecting, podOf, SETTINGS, V120, V130, type Obj } from './fixtures.js';

const run = (pod: Obj, over: Partial<InjectInput> = {}): ReturnType<typeof inject> =>
  inject({ namespace: 'shop', pod, policies: [injecting()], settings: SETTINGS, mode: 'native', kube: V130, version: '0.1.0', ...over });

/** The patched pod: applied to a copy, each operation checked (validateOperation). */
function applied(pod: Obj, patch: ReturnType<typeof inject>['patch']): Obj {
  const out = jsonpatch.applyPatch(structuredClone(pod), jsonpatch.deepClone(patch) as jsonpatch.Operation[], true, false).newDocument as Obj;
  return out;
}

function expectValidPod(pod: Obj): void {
  const withName = { ...pod, metadata: { name: 'web-7d9f-abcde', ...pod.metadata } };
  modelOf(withName).validate();
  expect(unknownFields(withName)).toEqual([]);
}

const names = (l: Obj[] | undefined): string[] => (l ?? []).map((c) => c.name);

describe('native mode (1.30)', () => {
  const pod = podOf([app('web'), app('worker')]);
  const r = run(pod);
  const out = applied(pod, r.patch);

  it('adds the agent as the first init container with restartPolicy Always, the two volumes, the shared PID namespace', () => {
    expect(r.decision).toMatchObject({ inject: true, via: 'policy' });
    expect(names(out.spec.initContainers)).toEqual(['fdstore-keeper', 'fdstore']);
    expect(out.spec.initContainers[1].restartPolicy).toBe('Always');
    expect(out.spec.initContainers[1].args).toEqual(['agent', '--run-dir', '/run/fdstore', '--container', 'web', '--container', 'worker', '--config', '/etc/fdstore/config', '--config-poll', '5s', '--http', '0.0.0.0:9721', '--log-level', 'info', '--keeper', keeperSocketPath('/run/fdstore')]);
    expect(names(out.spec.containers)).toEqual(['web', 'worker']);
    expect(names(out.spec.volumes)).toEqual(['fdstore-run', 'fdstore-config']);
    expect(out.spec.shareProcessNamespace).toBe(true);
    expectValidPod(out);
  });

  it('each app: the launcher before its command (args kept), NOTIFY_SOCKET, only its own directory', () => {
    const web = out.spec.containers[0];
    expect(web.command).toEqual(['/run/fdstore/fdstore-exec', '--wait-ms', '30000', '--', '/app/web']);
    expect(web.args).toEqual(['--port', '8080']);
    expect(web.env).toEqual([{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }]);
    expect(web.volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore', subPath: 'web' }]);
    expect(web.startupProbe).toBeUndefined();
  });

  it('the enrolled label, the config annotation (the operator\'s canonical JSON), the record of what was done', () => {
    expect(out.metadata.labels).toEqual({ app: 'web', 'fdstore.dev/enrolled': 'true' });
    expect(out.metadata.annotations['fdstore.dev/config']).toBe('{"defaults":{"fileDescriptorStoreMax":64},"policy":{"generation":3,"name":"inject-web"}}');
    expect(JSON.parse(out.metadata.annotations[INJECTED_ANNOTATION])).toEqual({ version: '0.1.0', mode: 'native', policy: 'inject-web', containers: ['web', 'worker'], unwrapped: {}, probes: false });
  });

  it('idempotent: the injected pod gives an empty patch', () => {
    const again = run(out);
    expect(again.patch).toEqual([]);
    expect(again.decision).toMatchObject({ inject: false, why: 'already_injected' });
  });
});

describe('classic mode (1.20)', () => {
  const pod = podOf([app('web')], { spec: { initContainers: [app('migrate', { command: ['/app/migrate'] })], volumes: [{ name: 'data', emptyDir: {} }] } });
  const r = run(pod, { mode: 'classic', kube: V120 });
  const out = applied(pod, r.patch);

  it('fdstore prepare first among the init containers, the agent first among the containers, no restartPolicy', () => {
    expect(names(out.spec.initContainers)).toEqual(['fdstore-prepare', 'migrate']);
    expect(names(out.spec.containers)).toEqual(['fdstore-keeper', 'fdstore', 'web']);
    expect(out.spec.containers[1].restartPolicy).toBeUndefined();
    expect(out.spec.containers[1].startupProbe).toBeUndefined();
    expect(out.spec.containers[1].securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' }); // 1.19+
    expect(out.spec.initContainers[0].args).toEqual(['prepare', '--run-dir', '/run/fdstore', '--container', 'web']);
    expect(names(out.spec.volumes)).toEqual(['fdstore-run', 'fdstore-config', 'data']);
    expectValidPod(out);
  });

  it('a Job pod (restartPolicy Never / OnFailure): the agent exits when the apps are done', () => {
    for (const [rp, arg] of [['Never', '0s'], ['OnFailure', '330s']] as const) {
      const job = podOf([app('web')], { spec: { restartPolicy: rp } });
      const o = applied(job, run(job, { mode: 'classic', kube: V120 }).patch);
      expect(o.spec.containers.map((c: { name: string }) => c.name)).toEqual(['fdstore', 'web']); // no keeper: it would keep the Job running
      expect(o.spec.containers[0].args.slice(-2)).toEqual(['--exit-when-done', arg]);
      expectValidPod(o);
    }
    const job = podOf([app('web')], { spec: { restartPolicy: 'Never' } });
    const native = applied(job, run(job).patch);
    expect(native.spec.initContainers[1].args).not.toContain('--exit-when-done');
  });
});

describe('containers and what is already there', () => {
  it('a container without command is not enrolled; the record and a warning say why; the entrypoint annotation opts it in', () => {
    const pod = podOf([app('web'), app('sidecar', { command: undefined })]);
    const r = run(pod);
    const out = applied(pod, r.patch);
    expect(out.spec.initContainers[1].args).toEqual(expect.arrayContaining(['--container', 'web']));
    expect(out.spec.initContainers[1].args).not.toContain('sidecar');
    expect(out.spec.containers[1].command).toBeUndefined();
    expect(out.spec.containers[1].env).toBeUndefined();
    const rec = JSON.parse(out.metadata.annotations[INJECTED_ANNOTATION]);
    expect(rec.containers).toEqual(['web']);
    expect(rec.unwrapped.sidecar).toMatch(/^no command: .*fdstore\.dev\/entrypoint\.sidecar/);
    expect(r.warnings).toEqual([expect.stringContaining('container sidecar not enrolled')]);
    expectValidPod(out);

    const opted = podOf([app('web'), app('sidecar', { command: undefined })], { annotations: { 'fdstore.dev/entrypoint.sidecar': '["/usr/bin/envoy","-c","/etc/envoy.yaml"]' } });
    const o2 = applied(opted, run(opted).patch);
    expect(o2.spec.containers[1].command).toEqual(['/run/fdstore/fdstore-exec', '--wait-ms', '30000', '--', '/usr/bin/envoy', '-c', '/etc/envoy.yaml']);
    const bad = podOf([app('sidecar', { command: undefined })], { annotations: { 'fdstore.dev/entrypoint.sidecar': '"/usr/bin/envoy"' } });
    const r3 = run(bad);
    expect(JSON.parse(applied(bad, r3.patch).metadata.annotations[INJECTED_ANNOTATION]).unwrapped.sidecar).toMatch(/not a non-empty JSON list/);
  });

  it('no container has a command: no sidecar, only the record', () => {
    const pod = podOf([app('web', { command: undefined })]);
    const r = run(pod);
    expect(r.patch.map((o) => o.path)).toEqual(['/metadata/annotations', '/metadata/annotations/fdstore.dev~1injected']);
    const out = applied(pod, r.patch);
    expect(out.spec).toEqual(pod.spec);
    expect(run(out).patch).toEqual([]);
  });

  it('existing env and volumeMounts: ours go first, theirs stay', () => {
    const pod = podOf([app('web', { env: [{ name: 'A', value: '1' }], volumeMounts: [{ name: 'data', mountPath: '/data' }] })], { spec: { volumes: [{ name: 'data', emptyDir: {} }] } });
    const out = applied(pod, run(pod).patch);
    expect(out.spec.containers[0].env).toEqual([{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }, { name: 'A', value: '1' }]);
    expect(out.spec.containers[0].volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore', subPath: 'web' }, { name: 'data', mountPath: '/data' }]);
    expectValidPod(out);
  });

  it('a container or volume named like ours: not injected, with a warning', () => {
    for (const pod of [podOf([app('web'), app('fdstore')]), podOf([app('web')], { spec: { volumes: [{ name: 'fdstore-run', emptyDir: {} }] } }), podOf([app('web')], { spec: { initContainers: [app('fdstore-prepare')] } })]) {
      const r = run(pod);
      expect(r.patch).toEqual([]);
      expect(r.decision).toMatchObject({ inject: false, why: 'name_clash' });
      expect(r.warnings).toHaveLength(1);
    }
  });

  it('probes when the policy asks, where the container has none of its own', () => {
    const pod = podOf([app('web'), app('api', { readinessProbe: { httpGet: { path: '/ready', port: 8080 } } })]);
    const r = run(pod, { policies: [injecting('p', { injection: { enabled: true, probes: true } })] });
    const out = applied(pod, r.patch);
    expect(out.spec.containers[0].startupProbe).toEqual({ httpGet: { path: '/readyz/web', port: 9721 }, periodSeconds: 1, failureThreshold: 600, timeoutSeconds: 2 });
    expect(out.spec.containers[0].livenessProbe.httpGet).toEqual({ path: '/livez/web', port: 9721 });
    expect(out.spec.containers[1].readinessProbe).toEqual({ httpGet: { path: '/ready', port: 8080 } });
    expect(r.warnings).toEqual(['fdstore: container api keeps its own readinessProbe']);
    expectValidPod(out);
  });

  it('spec.injection.containers picks the containers', () => {
    const pod = podOf([app('web'), app('metrics')]);
    const out = applied(pod, run(pod, { policies: [injecting('p', { injection: { enabled: true, containers: ['web', 'gone'] } })] }).patch);
    expect(JSON.parse(out.metadata.annotations[INJECTED_ANNOTATION])).toMatchObject({ containers: ['web'], unwrapped: { gone: expect.stringContaining('no such container') } });
    expect(out.spec.containers[1]).toEqual(pod.spec.containers[1]);
  });

  it('a pod without labels or annotations', () => {
    const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { generateName: 'x-' }, spec: { containers: [app('web')] } };
    const out = applied(pod, run(pod, { policies: [] }).patch);
    expect(out.spec.initContainers).toBeUndefined();
    const annotated = { ...pod, metadata: { generateName: 'x-', annotations: { 'fdstore.dev/inject': 'true' } } };
    const o2 = applied(annotated, run(annotated, { policies: [] }).patch);
    expect(o2.metadata.labels).toEqual({ 'fdstore.dev/enrolled': 'true' });
    expect(o2.metadata.annotations['fdstore.dev/config']).toBeUndefined();
    expectValidPod(o2);
  });

  it('a Deployment\'s pod template (prefix /spec/template)', () => {
    const dep = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [app('web')] } } } };
    const r = run(dep.spec.template, { prefix: '/spec/template' });
    const out = applied(dep, r.patch);
    modelOf(out).validate();
    expect(unknownFields(out)).toEqual([]);
    expect(names(out.spec.template.spec.initContainers)).toEqual(['fdstore-keeper', 'fdstore']);
  });
});

describe('never', () => {
  it.each([
    ['kube-system', 'kube-system', podOf([app('web')], { annotations: { 'fdstore.dev/inject': 'true' } }), 'excluded_namespace'],
    ['the operator\'s pods', 'shop', podOf([app('web')], { labels: { 'app.kubernetes.io/part-of': 'fdstore', 'app.kubernetes.io/component': 'operator' } }), 'operator_pod'],
    ['opted out', 'shop', podOf([app('web')], { annotations: { 'fdstore.dev/inject': 'false' } }), 'opted_out'],
    ['outside any policy', 'shop', podOf([app('web')], { labels: { app: 'other' } }), 'not_selected'],
    ['a policy in another namespace', 'other', podOf([app('web')]), 'not_selected'],
    ['enrolled by the chart already', 'shop', podOf([app('web')], { labels: { 'fdstore.dev/enrolled': 'true' } }), 'already_enrolled'],
  ])('%s', (_what, namespace, pod, why) => {
    const r = run(pod, { namespace });
    expect(r.patch).toEqual([]);
    expect(r.decision).toMatchObject({ inject: false, why });
  });

  it('a winning policy with injection off', () => {
    const off = injecting('hi', { priority: 5, injection: { enabled: false } });
    const r = run(podOf([app('web')]), { policies: [injecting(), off] });
    expect(r.decision).toMatchObject({ inject: false, why: 'not_selected', detail: expect.stringContaining('policy hi') });
  });
});
