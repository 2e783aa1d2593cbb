/**
 * The chart's injector on the real 1.20 cluster, installed with helm: the certificate
 * the chart makes is kept across `helm upgrade` (lookup of the Secret), caBundle is
 * that Secret's CA, and the API server reaches the operator pods through the Service
 * (port 443) with it: a pod of a Deployment selected by a policy is injected.
 * The release watches only its own namespace, its webhook sees only that namespace
 * (the cluster is shared), and the CRDs are not the release's.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHART } from '../chart/helm.js';
import { apply, freshNamespace, getJson, kubeEnv, kubectl, run, waitFor } from './cluster.js';
import { applyCrds } from './operator-env.js';
import { injectImage } from './inject-image.js';

const ns = freshNamespace('inject-chart');
const release = `inj${process.pid}`;
let image = '';

const helm = (args: string[]) => run(kubeEnv().helm, ['--kubeconfig', kubeEnv().kubeconfig, ...args], { timeoutMs: 300_000 });

function values(): string[] {
  const [repository, tag] = image.split(':');
  return [
    '--set', `image.repository=${repository},image.tag=${tag},image.pullPolicy=Never`,
    '--set', 'crds.enabled=false,operator.replicas=1,operator.podDisruptionBudget.enabled=false',
    '--set', `operator.watchNamespace=${ns.name}`,
    '--set', `injector.namespaceSelector.matchLabels.fdstore\\.dev/inject-chart-test=${ns.name}`,
  ];
}

interface SecretObj { data: Record<string, string> }
interface MwcObj { webhooks: { clientConfig: { caBundle: string } }[] }

beforeAll(async () => {
  image = await injectImage();
  await applyCrds();
  await kubectl(['label', 'ns', ns.name, `fdstore.dev/inject-chart-test=${ns.name}`]);
  const r = await helm(['install', release, CHART, '-n', ns.name, ...values(), '--wait', '--timeout', '180s']);
  expect([r.code, r.stderr]).toEqual([0, '']);
}, 600_000);

afterAll(async () => {
  await helm(['uninstall', release, '-n', ns.name, '--wait=false']);
});

describe('the chart\'s injector', () => {
  it('keeps its certificate across helm upgrade; caBundle is the Secret\'s CA', async () => {
    const secretName = `${release}-fdstore-webhook-tls`;
    const before = await getJson<SecretObj>(['-n', ns.name, 'secret', secretName]);
    const mwc = await getJson<MwcObj>(['mutatingwebhookconfiguration', `${release}-fdstore-injector`]);
    expect(mwc.webhooks[0]!.clientConfig.caBundle).toBe(before.data['ca.crt']);
    const r = await helm(['upgrade', release, CHART, '-n', ns.name, ...values(), '--set', 'operator.logLevel=debug', '--wait', '--timeout', '180s']);
    expect([r.code, r.stderr]).toEqual([0, '']);
    const after = await getJson<SecretObj>(['-n', ns.name, 'secret', secretName]);
    expect(after.data).toEqual(before.data);
    expect((await getJson<MwcObj>(['mutatingwebhookconfiguration', `${release}-fdstore-injector`])).webhooks[0]!.clientConfig.caBundle).toBe(before.data['ca.crt']);
  });

  it('the API server calls the operator pods through the Service: a selected pod is injected', async () => {
    await apply({ apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name: 'inject' }, spec: { selector: { matchLabels: { app: 'web' } }, injection: { enabled: true } } }, ns.name);
    await waitFor(async () => (await kubectl(['-n', ns.name, 'get', 'fdstorepolicy', 'inject', '-o', 'jsonpath={.status.conditions[?(@.type=="Accepted")].status}'])).trim() === 'True' || undefined, 120_000, 'the policy accepted by the chart\'s operator');
    // Each try is a fresh pod (a create that the webhook missed stays as it is).
    const injected = await waitFor(async () => {
      const name = `web-${Date.now()}`;
      await apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name, labels: { app: 'web' } }, spec: { containers: [{ name: 'web', image: kubeEnv().nodeImage, imagePullPolicy: 'Never', command: ['sleep', 'infinity'] }] } }, ns.name);
      const pod = await getJson<{ metadata: { annotations?: Record<string, string> }; spec: { containers: { name: string }[] } }>(['-n', ns.name, 'pod', name]);
      return pod.metadata.annotations?.['fdstore.dev/injected'] ? pod : undefined;
    }, 120_000, 'a pod injected through the Service');
    expect(injected.spec.containers.map((c) => c.name)).toEqual(['fdstore-keeper', 'fdstore', 'web']);
  });
});
