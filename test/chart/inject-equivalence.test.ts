// One source for the chart's sidecar templates and the injector, so they cannot drift:
// for the same values, the pod a user's chart renders with the named templates
// (fixtures/injectable) equals the bare pod with the injector's JSON patch applied,
// where the injector's settings are the --inject-sidecar argument the chart renders
// for the operator (the chain a cluster runs). Only the injector's own annotations
// (fdstore.dev/injected, fdstore.dev/config) differ.
import jsonpatch from 'fast-json-patch';
import { describe, expect, it } from 'vitest';
import { inject } from '../../src/inject/patch.js';
import { parseKubeVersion, pickMode } from '../../src/inject/mode.js';
import { parseSettings } from '../../src/inject/settings.js';
import type { FdStorePolicy } from '../../src/operator/types.js';
import { CHART, chartCopy, helm, one, render, type Obj } from './helm.js';
import { join } from 'node:path';

const chart = (() => {
  const dir = chartCopy(join(import.meta.dirname, 'fixtures', 'injectable'), (t) => t.replace('FDSTORE_CHART', CHART));
  const r = helm(['dependency', 'build', dir]);
  if (r.code !== 0) throw new Error(`helm dependency build failed: ${r.stderr}`);
  return dir;
})();

const hardened = { runAsUser: 10001, runAsGroup: 10001, runAsNonRoot: true, allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } };
const app = (name: string, over: Obj = {}): Obj => ({ name, image: 'localhost/webapp:1.0', command: [`/app/${name}`], args: ['--port', '8080'], securityContext: hardened, ...over });

function policy(probes: boolean): FdStorePolicy {
  return { apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name: 'p', namespace: 'shop', generation: 1 }, spec: { selector: {}, injection: { enabled: true, probes } } };
}

interface Case {
  kube: string;
  pod: Obj;
  enrol: string[];
  fdstore?: { image?: Obj; sidecar?: Obj };
  probes?: boolean;
}

const CUSTOM = {
  image: { repository: 'registry.example/fdstore', tag: '9.9.9', pullPolicy: 'Always' },
  sidecar: { port: 9800, runDir: '/var/run/fds', uid: 50001, configPoll: '2s', logLevel: 'debug', extraArgs: ['--fd-store-max', '128'], launcherWaitMs: 5000, resources: { requests: { cpu: '5m' } } },
};

const CASES: [string, Case][] = [
  ['native (1.30): two apps, an init container, their own env, mounts and volumes', {
    kube: '1.30.0',
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', labels: { app: 'web' } }, spec: { initContainers: [app('migrate')], containers: [app('web', { env: [{ name: 'A', value: '1' }], volumeMounts: [{ name: 'data', mountPath: '/data' }] }), app('worker')], volumes: [{ name: 'data', emptyDir: {} }] } },
    enrol: ['web', 'worker'],
  }],
  ['classic (1.20): the same pod', {
    kube: '1.20.0',
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', labels: { app: 'web' } }, spec: { initContainers: [app('migrate')], containers: [app('web'), app('worker')], volumes: [{ name: 'data', emptyDir: {} }] } },
    enrol: ['web', 'worker'],
  }],
  ['classic (1.28): a Job\'s pod, restartPolicy Never', { kube: '1.28.0', pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'job', labels: { app: 'job' } }, spec: { restartPolicy: 'Never', containers: [app('batch')] } }, enrol: ['batch'] }],
  ['classic (1.20): restartPolicy OnFailure', { kube: '1.20.0', pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'job', labels: { app: 'job' } }, spec: { restartPolicy: 'OnFailure', containers: [app('batch')] } }, enrol: ['batch'] }],
  ['native (1.29): a Job\'s pod (the kubelet stops native sidecars itself)', { kube: '1.29.0', pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'job', labels: { app: 'job' } }, spec: { restartPolicy: 'Never', containers: [app('batch')] } }, enrol: ['batch'] }],
  ['every sidecar value changed, probes on, a container with its own readinessProbe and one without command', {
    kube: '1.30.0',
    pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', labels: { app: 'web' } }, spec: { containers: [app('web'), app('api', { readinessProbe: { httpGet: { path: '/ready', port: 8080 } } }), app('envoy', { command: undefined })] } },
    enrol: ['web', 'api'],
    fdstore: CUSTOM,
    probes: true,
  }],
  ['classic (1.20), every sidecar value changed', { kube: '1.20.0', pod: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', labels: { app: 'web' } }, spec: { containers: [app('web')] } }, enrol: ['web'], fdstore: CUSTOM }],
];

describe.each(CASES)('%s', (_what, c) => {
  const fdstoreValues = { ...c.fdstore, sidecar: { ...c.fdstore?.sidecar, appProbes: { enabled: c.probes === true } } };
  const fromChart = one(render({ chart, kube: c.kube, namespace: 'shop', values: { pod: JSON.parse(JSON.stringify(c.pod)) as Obj, enrol: c.enrol, fdstore: fdstoreValues } }), 'Pod');
  // What the operator gets from the chart for the same values.
  const operator = one(render({ kube: c.kube, values: fdstoreValues }), 'Deployment', '-operator').spec.template.spec.containers[0];
  const settingsArg = operator.args[operator.args.indexOf('--inject-sidecar') + 1] as string;
  const kube = parseKubeVersion({ gitVersion: `v${c.kube}` });
  const r = inject({ namespace: 'shop', pod: c.pod, policies: [policy(c.probes === true)], settings: parseSettings(settingsArg, 'unused'), mode: pickMode('auto', kube), kube, version: '0.1.0' });
  const injected = jsonpatch.applyPatch(structuredClone(c.pod), r.patch as jsonpatch.Operation[], true, false).newDocument as Obj;

  it('the injector\'s pod equals the chart\'s, but for its own annotations', () => {
    const { annotations, ...meta } = injected.metadata as Obj;
    expect(Object.keys(annotations as Obj).sort()).toEqual(['fdstore.dev/config', 'fdstore.dev/injected']);
    expect({ ...injected, metadata: meta }).toEqual(fromChart);
  });

  it('the check can fail: a pod differing in one field is not equal', () => {
    const changed = structuredClone(injected);
    changed.spec.volumes[0].emptyDir = { medium: 'Memory' };
    delete changed.metadata.annotations;
    expect(changed).not.toEqual(fromChart);
  });
});
