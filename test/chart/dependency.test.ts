// Users include the sidecar from their own chart: test/chart/fixtures/webapp depends on
// charts/fdstore (a file:// dependency, helm dependency build), renders nothing of the
// fdstore chart itself (operator and CRDs off), and gets the sidecar for its two app
// containers with its own settings (.Values.fdstore), in both modes.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_UID, containersOf, expectHardened, expectValid } from './check.js';
import { helm, render, template, webappChart, type Obj } from './helm.js';

let chart = '';

beforeAll(() => {
  chart = webappChart();
});

const pod = (objs: Obj[]): Obj => {
  expect(objs.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual(['Deployment/web-webapp']);
  return objs[0]!.spec.template.spec;
};

describe.each([['1.20.0', 'classic'], ['1.30.0', 'native']])('Kubernetes %s (%s)', (kube, mode) => {
  const objs = (): Obj[] => render({ chart, kube, release: 'web', namespace: 'shop' });

  it('only the user\'s Deployment; valid, closed, hardened', () => {
    const o = objs();
    const p = pod(o);
    expectValid(o, null);
    expectHardened(p);
  });

  it('the agent serves both containers, with the parent\'s fdstore values (image, port)', () => {
    const p = pod(objs());
    const all = containersOf(p);
    const agent = all.find(({ c }) => c.name === 'fdstore')!;
    expect(agent.list).toBe(mode === 'native' ? 'initContainers' : 'containers');
    expect(agent.c.image).toBe('registry.example/fdstore:0.1.0');
    expect(agent.c.args).toEqual(expect.arrayContaining(['--container', 'web', '--container', 'worker', '0.0.0.0:9800']));
    expect(agent.c.securityContext.runAsUser).toBe(AGENT_UID);
    // the sidecar's init container first, the user's after it
    expect(p.initContainers.map((c: Obj) => c.name)).toEqual(mode === 'native' ? ['fdstore-keeper', 'fdstore', 'migrate'] : ['fdstore-prepare', 'migrate']);
    expect(p.containers.map((c: Obj) => c.name)).toEqual(mode === 'native' ? ['web', 'worker'] : ['fdstore-keeper', 'fdstore', 'web', 'worker']);
  });

  it('each app: the launcher, NOTIFY_SOCKET, its own subPath, probes on its own name', () => {
    const p = pod(objs());
    for (const name of ['web', 'worker']) {
      const c = p.containers.find((x: Obj) => x.name === name);
      expect(c.command).toEqual(['/run/fdstore/fdstore-exec', '--wait-ms', '30000', '--', `/app/${name}`, '--port', '8080']);
      expect(c.env).toEqual([{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }, { name: 'ROLE', value: name }]);
      expect(c.volumeMounts).toEqual([{ name: 'fdstore-run', mountPath: '/run/fdstore', subPath: name }]);
      expect([c.readinessProbe.httpGet, c.livenessProbe.httpGet]).toEqual([{ path: `/readyz/${name}`, port: 9800 }, { path: `/livez/${name}`, port: 9800 }]);
    }
    expect(p.shareProcessNamespace).toBe(true);
  });
});

describe('mistakes fail the render with a message', () => {
  it.each([
    ['a mode forced from the parent\'s values', ['--set', 'fdstore.sidecar.mode=native', '--kube-version', '1.20.0'], 'sidecar.mode native needs Kubernetes >= 1.29'],
    ['a misspelled fdstore value (the subchart\'s schema applies)', ['--set', 'fdstore.sidecar.prot=1'], "additional properties 'prot' not allowed"],
  ])('%s', (_what, args, message) => {
    const r = helm(['template', 'web', chart, ...args]);
    expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(message)]);
  });

  it('an app container not among containers, a missing root', () => {
    const file = join(chart, 'templates', 'bad.yaml');
    writeFileSync(file, '{{ include "fdstore.app.env" (dict "root" $ "containers" (list "web") "container" "wbe") }}\n');
    expect(template({ chart }).stderr).toContain('container "wbe" is not in containers [web]');
    writeFileSync(file, '{{ include "fdstore.sidecar.volumes" (dict "containers" (list "web")) }}{{ include "fdstore.sidecar.containers" (dict "containers" (list "web")) }}\n');
    expect(template({ chart }).stderr).toContain('the dict needs root');
    writeFileSync(file, '{{ include "fdstore.sidecar.containers" (dict "root" $ "containers" (list "Web_1")) }}\n');
    expect(template({ chart }).stderr).toContain('"Web_1" is not a DNS-1123 label');
    writeFileSync(file, '');
  });
});
