// examples/web-*.yaml are the chart's example workload (a Deployment built with the named
// sidecar templates, its demo ConfigMap and Service) rendered for `kubectl apply`: checked
// equal to the render here, so they cannot drift from the chart. After a chart change:
// `npx vitest run test/chart/examples.test.ts -u` rewrites them.
import { describe, expect, it } from 'vitest';
import { REPO } from '../helpers/proc.js';
import { template } from './helm.js';

const values = { operator: { enabled: false }, crds: { enabled: false }, example: { enabled: true } };

function header(mode: string, kube: string): string {
  return `# A complete workload with the fdstore sidecar (${mode}), for kubectl apply -n NAMESPACE -f:
# the chart's example (charts/fdstore, example.enabled=true, release "web") rendered for
# Kubernetes ${kube}, namespace left out. It needs the fdstore image (docs/image.md: build it,
# then push it or import it into your nodes' runtime) and the CRDs and operator for
# kubectl get fdstores (helm install ... --set example.enabled=false installs those).
# Generated: npx vitest run test/chart/examples.test.ts -u (test/chart/examples.test.ts).
`;
}

function rendered(kube: string): string {
  const r = template({ values, kube, release: 'web', namespace: 'default' });
  expect([r.code, r.stderr]).toEqual([0, '']);
  return r.stdout.replace(/^ {2}namespace: default\n/gm, '');
}

describe('examples/', () => {
  it('web-native.yaml is the example rendered for 1.29+ (native sidecar)', async () => {
    const text = rendered('1.30.0');
    expect(text).toContain('restartPolicy: Always');
    await expect(header('native sidecar, Kubernetes 1.29 and later', '1.30') + text).toMatchFileSnapshot(`${REPO}/examples/web-native.yaml`);
  });

  it('web-classic.yaml is the example rendered for older clusters (a plain container)', async () => {
    const text = rendered('1.20.2');
    expect(text).not.toContain('restartPolicy: Always');
    await expect(header('classic: a plain container, Kubernetes before 1.29', '1.20') + text).toMatchFileSnapshot(`${REPO}/examples/web-classic.yaml`);
  });
});
