// The chart's 1.20 render against the real 1.20 API server: a server-side dry run with
// kubectl's strict validation. 1.20 has no server-side field validation, so kubectl
// checks each object against the server's own OpenAPI document and refuses unknown
// fields: the 1.20 schema itself, where test/chart's offline checks have v1.33's. The
// same check refuses the native-sidecar render (restartPolicy on an init container),
// which 1.20 would otherwise drop silently. Monitors are left out: the cluster has no
// Prometheus Operator CRDs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { template, webappChart } from '../chart/helm.js';
import { freshNamespace, kubectlRun, REPO } from './cluster.js';

const ns = freshNamespace('chart');
const KUBE = '1.20.2';

const dryRun = (manifests: string) => kubectlRun(['-n', ns.name, 'apply', '--dry-run=server', '--validate=strict', '-f', '-'], { input: manifests });

function rendered(values: object, kube = KUBE): string {
  const r = template({ values, kube, namespace: ns.name });
  expect([r.code, r.stderr]).toEqual([0, '']);
  return r.stdout;
}

describe(`the chart on the ${KUBE} API server (server dry run, strict validation)`, () => {
  it('every object of the default and the example, dashboard render is accepted', async () => {
    for (const values of [{}, { example: { enabled: true }, dashboard: { enabled: true } }, { example: { enabled: true }, sidecar: { mode: 'classic' } }]) {
      const r = await dryRun(rendered(values));
      expect([r.code, r.stderr]).toEqual([0, '']);
      expect(r.stdout).toContain('deployment.apps/rel-fdstore-operator created (server dry run)');
    }
  });

  it('refuses the native-sidecar render (1.30): restartPolicy is no field of a 1.20 container', async () => {
    const r = await dryRun(rendered({ example: { enabled: true }, operator: { enabled: false }, crds: { enabled: false } }, '1.30.0'));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown field "restartPolicy" in io.k8s.api.core.v1.Container');
  });

  it('refuses a misspelled field (the check can fail on what 1.20 would drop)', async () => {
    const text = rendered({ example: { enabled: true }, operator: { enabled: false }, crds: { enabled: false } }).replace('livenessProbe:', 'livenessProbes:');
    const r = await dryRun(text);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain('unknown field "livenessProbes"');
  });

  it('examples/web-classic.yaml (the render users kubectl apply) is accepted', async () => {
    const r = await dryRun(readFileSync(join(REPO, 'examples', 'web-classic.yaml'), 'utf8'));
    expect([r.code, r.stderr]).toEqual([0, '']);
    expect(r.stdout).toContain('deployment.apps/web-fdstore-example created (server dry run)');
  });

  describe('a user chart that includes the named templates (test/chart/fixtures/webapp)', () => {
    let chart = '';
    beforeAll(() => {
      chart = webappChart();
    });

    it('is accepted', async () => {
      const r = template({ chart, kube: KUBE, namespace: ns.name });
      expect(r.code).toBe(0);
      const d = await dryRun(r.stdout);
      expect([d.code, d.stderr, d.stdout.trim()]).toEqual([0, '', 'deployment.apps/rel-webapp created (server dry run)']);
    });
  });
});
