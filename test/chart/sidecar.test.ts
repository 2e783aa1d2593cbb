// The sidecar templates as the example renders them: native mode (Kubernetes >= 1.29:
// the agent is an init container with restartPolicy: Always) and classic mode (before
// 1.29, or forced: fdstore prepare, then the agent as a plain container), never
// restartPolicy on an init container of a 1.20 pod, the app side (launcher, NOTIFY_SOCKET,
// its own subPath, probes on the agent's port), both modes valid and closed.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { keeperSocketPath } from '../../src/unit/layout.js';
import { AGENT_UID, containersOf, expectHardened, expectValid } from './check.js';
import { REPO, one, render, template, type Obj } from './helm.js';

const example = (kube: string, sidecar: object = {}, extra: object = {}): Obj[] =>
  render({ kube, values: { example: { enabled: true }, sidecar, ...extra } });
const podOf = (objs: Obj[]): Obj => one(objs, 'Deployment', '-example').spec.template.spec;
const names = (list: Obj[] | undefined): string[] => (list ?? []).map((c) => c.name);
const app = (pod: Obj): Obj => pod.containers.find((c: Obj) => c.name === 'app');
const agentOf = (pod: Obj): Obj => containersOf(pod).find(({ c }) => c.name === 'fdstore')!.c;

const MODES: [string, string, object, 'native' | 'classic'][] = [
  ['1.20, auto', '1.20.0', {}, 'classic'],
  ['1.28, auto', '1.28.3', {}, 'classic'],
  ['1.29, auto', '1.29.0', {}, 'native'],
  ['1.30, auto', '1.30.0', {}, 'native'],
  ['1.30, classic forced', '1.30.0', { mode: 'classic' }, 'classic'],
  ['1.30, native forced', '1.30.0', { mode: 'native' }, 'native'],
];

describe.each(MODES)('%s', (_what, kube, sidecar, mode) => {
  const objs = example(kube, sidecar);
  const pod = podOf(objs);

  it(`is ${mode}: ${mode === 'native' ? 'the keeper, then the agent first among the init containers, restartPolicy Always' : 'fdstore prepare as init container, then the keeper and the agent before the app'}`, () => {
    if (mode === 'native') {
      expect([names(pod.initContainers), names(pod.containers)]).toEqual([['fdstore-keeper', 'fdstore'], ['app']]);
      expect(pod.initContainers.map((c: Obj) => c.restartPolicy)).toEqual(['Always', 'Always']);
      expect(pod.initContainers[1].startupProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'fdstore-http' } });
    } else {
      expect([names(pod.initContainers), names(pod.containers)]).toEqual([['fdstore-prepare'], ['fdstore-keeper', 'fdstore', 'app']]);
      expect(pod.initContainers[0].args).toEqual(['prepare', '--run-dir', '/run/fdstore', '--container', 'app']);
      expect(pod.initContainers[0].volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore' }]);
      expect(pod.initContainers[0].securityContext.runAsUser).toBe(AGENT_UID);
      // No container of a classic pod has restartPolicy (1.20 would drop it from an init container)
      for (const { c } of containersOf(pod)) expect([c.name, c.restartPolicy]).toEqual([c.name, undefined]);
    }
  });

  it('every object is valid and closed; the pod is hardened', () => {
    expectValid(objs);
    expectHardened(pod);
  });

  it('the agent: agent --run-dir --container app --config (the projected annotation) --http, port fdstore-http, as its own uid', () => {
    const agent = agentOf(pod);
    expect(agent.args).toEqual(['agent', '--run-dir', '/run/fdstore', '--container', 'app', '--config', '/etc/fdstore/config', '--config-poll', '5s', '--http', '0.0.0.0:9721', '--log-level', 'info', '--keeper', keeperSocketPath('/run/fdstore')]);
    expect(agent.ports).toEqual([{ name: 'fdstore-http', containerPort: 9721, protocol: 'TCP' }]);
    expect(agent.securityContext.runAsUser).toBe(AGENT_UID);
    expect(agent.volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore' }, { name: 'fdstore-config', mountPath: '/etc/fdstore', readOnly: true }]);
    // an agent restart loses every store: its own liveness is generous
    expect(agent.livenessProbe.failureThreshold * agent.livenessProbe.periodSeconds).toBeGreaterThanOrEqual(60);
  });

  it('the keeper: fdstore-keeper --run-dir, the agent\'s uid and run dir, its own resources, hardened like the agent', () => {
    const keeper = containersOf(pod).find(({ c }) => c.name === 'fdstore-keeper')!.c;
    expect(keeper.command).toEqual(['/usr/local/bin/fdstore-keeper']);
    expect(keeper.args).toEqual(['--run-dir', '/run/fdstore']);
    expect(keeper.image).toBe(agentOf(pod).image);
    expect(keeper.securityContext).toEqual(agentOf(pod).securityContext);
    expect(keeper.volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore' }]);
    expect(keeper.resources).toEqual({ requests: { cpu: '5m', memory: '8Mi' }, limits: { memory: '32Mi' } });
    expect(keeper.restartPolicy).toBe(mode === 'native' ? 'Always' : undefined);
  });

  it('keeper.enabled=false: no keeper, no --keeper, the pod as before', () => {
    const off = podOf(example(kube, { ...sidecar, keeper: { enabled: false } }));
    expect(containersOf(off).map(({ c }) => c.name)).not.toContain('fdstore-keeper');
    expect(agentOf(off).args).not.toContain('--keeper');
    expect(names(off.initContainers)).toEqual(mode === 'native' ? ['fdstore'] : ['fdstore-prepare']);
    const withMax = podOf(example(kube, { ...sidecar, keeper: { maxFds: 20000 } }));
    expect(containersOf(withMax).find(({ c }) => c.name === 'fdstore-keeper')!.c.args).toEqual(['--run-dir', '/run/fdstore', '--max-fds', '20000']);
  });

  it('the pod: enrolled label, shared PID namespace, the run-dir emptyDir and the downwardAPI config volume', () => {
    const tpl = one(objs, 'Deployment', '-example').spec.template;
    expect(tpl.metadata.labels['fdstore.dev/enrolled']).toBe('true');
    expect(pod.shareProcessNamespace).toBe(true);
    expect(pod.volumes.slice(0, 2)).toEqual([
      { name: 'fdstore-run', emptyDir: {} },
      { name: 'fdstore-config', downwardAPI: { items: [{ path: 'config', fieldRef: { fieldPath: "metadata.annotations['fdstore.dev/config']" } }] } },
    ]);
  });

  it('the app: the launcher before its command, NOTIFY_SOCKET, only its own directory, another uid than the agent', () => {
    const a = app(pod);
    expect(a.command).toEqual(['/run/fdstore/fdstore-exec', '--wait-ms', '30000', '--', 'python3', '-u', '/opt/demo/server.py', '8080', '0.0.0.0']);
    expect(a.env).toEqual([{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }]);
    expect(a.volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore', subPath: 'app' }, { name: 'demo', mountPath: '/opt/demo', readOnly: true }]);
    expect(a.securityContext.runAsUser).toBe(10001);
  });

  it('the app\'s probes: startup and readiness on /readyz/app, liveness on /livez/app, the agent\'s port by number', () => {
    const a = app(pod);
    const port = agentOf(pod).ports[0].containerPort;
    expect([a.startupProbe.httpGet, a.readinessProbe.httpGet, a.livenessProbe.httpGet]).toEqual([
      { path: '/readyz/app', port }, { path: '/readyz/app', port }, { path: '/livez/app', port },
    ]);
  });
});

describe('an agent hiccup never kills a healthy app', () => {
  const a = app(podOf(example('1.20.0')));

  it('liveness tolerates the agent away for 30 s (a restart is about a second, a first CrashLoopBackOff 10 s more)', () => {
    expect(a.livenessProbe.failureThreshold * a.livenessProbe.periodSeconds).toBeGreaterThanOrEqual(30);
    expect(a.livenessProbe.timeoutSeconds).toBeGreaterThanOrEqual(2);
  });

  it('the startup probe is generous (the agent enforces timeoutStartSec and reports it on /livez)', () => {
    expect(a.startupProbe.failureThreshold * a.startupProbe.periodSeconds).toBeGreaterThanOrEqual(300);
  });

  it('the probes follow sidecar.appProbes, and go away with enabled=false', () => {
    const p = app(podOf(example('1.20.0', { appProbes: { liveness: { periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 1 } } })));
    expect(p.livenessProbe).toEqual({ httpGet: { path: '/livez/app', port: 9721 }, periodSeconds: 1, failureThreshold: 1, timeoutSeconds: 1 });
    const none = app(podOf(example('1.20.0', { appProbes: { enabled: false } })));
    expect([none.startupProbe, none.readinessProbe, none.livenessProbe]).toEqual([undefined, undefined, undefined]);
  });
});

describe('settings', () => {
  it('native on an API server before 1.29 fails the render (never restartPolicy: Always there)', () => {
    for (const kube of ['1.20.0', '1.28.9']) {
      const r = template({ kube, values: { example: { enabled: true }, sidecar: { mode: 'native' } } });
      expect([r.code, r.stderr]).toEqual([1, expect.stringContaining('sidecar.mode native needs Kubernetes >= 1.29')]);
    }
  });

  it('port, runDir, uid, image, extraArgs, launcherWaitMs reach every part', () => {
    const pod = podOf(example('1.30.0', { port: 9800, runDir: '/run/fds', uid: 5000, extraArgs: ['--fd-store-max', '64'], launcherWaitMs: 5000 },
      { image: { repository: 'localhost/fdstore', tag: 'abc', pullPolicy: 'Never' } }));
    const agent = agentOf(pod);
    expect(agent.args).toEqual(expect.arrayContaining(['/run/fds', '0.0.0.0:9800', '--fd-store-max', '64']));
    expect([agent.image, agent.imagePullPolicy, agent.securityContext.runAsUser, agent.env]).toEqual(['localhost/fdstore:abc', 'Never', 5000, [{ name: 'FDSTORE_RUN_DIR', value: '/run/fds' }]]);
    const a = app(pod);
    expect(a.command.slice(0, 4)).toEqual(['/run/fds/fdstore-exec', '--wait-ms', '5000', '--']);
    expect([a.env[0].value, a.volumeMounts[0].mountPath, a.readinessProbe.httpGet.port]).toEqual(['/run/fds/notify', '/run/fds', 9800]);
  });

  it('the example\'s ConfigMap holds demo/server.py; its Service selects its pods on the app\'s port', () => {
    const objs = example('1.30.0');
    expect(one(objs, 'ConfigMap', '-example').data['server.py']).toBe(readFileSync(join(REPO, 'demo', 'server.py'), 'utf8'));
    const svc = one(objs, 'Service', '-example');
    const dep = one(objs, 'Deployment', '-example');
    expect(svc.spec.selector).toEqual(dep.spec.selector.matchLabels);
    expect(dep.spec.template.metadata.labels).toMatchObject(svc.spec.selector);
    expect(svc.spec.ports).toEqual([{ name: 'http', port: 80, targetPort: 'http', protocol: 'TCP' }]);
    // a restarting container is never ready: without this a one-pod Service refuses meanwhile
    expect(svc.spec.publishNotReadyAddresses).toBe(true);
    expect(one(render({ values: { example: { enabled: true, service: { publishNotReadyAddresses: false } } } }), 'Service', '-example').spec.publishNotReadyAddresses).toBe(false);
    expect(app(dep.spec.template.spec).ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(dep.spec.replicas).toBe(1);
  });
});
