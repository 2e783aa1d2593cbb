/**
 * The injector on the real 1.20 cluster: the API server calls the webhook (served by
 * an operator process on the host, clientConfig.url over HTTPS with our own CA); a
 * Deployment that never mentions fdstore gets the sidecar (classic mode: 1.20) after a
 * policy with injection on selects it and `kubectl rollout restart`; its app stores its
 * listening socket and a container restart drops nothing; a Job's pod finishes
 * (the agent exits once the app is done: --exit-when-done).
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTls } from '../inject/tls.js';
import { REPO, apply, freshNamespace, getJson, kubeEnv, kubectl, kubectlRun, waitFor } from './cluster.js';
import { AGENT_PORT, applyCrds, operatorKubeconfig, startOperator, type OperatorProc } from './operator-env.js';
import { injectImage } from './inject-image.js';

const ns = freshNamespace('inject');
const WEBHOOK = `inject-test-${ns.name}`.slice(0, 63);
let op: OperatorProc;
let image = '';

interface PodObj {
  metadata: { name: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; deletionTimestamp?: string };
  spec: { initContainers?: { name: string; args?: string[] }[]; containers: { name: string; command?: string[]; args?: string[] }[]; shareProcessNamespace?: boolean };
  status: { podIP?: string; phase?: string; containerStatuses?: { name: string; ready: boolean; restartCount: number; state: { terminated?: { exitCode: number } } }[] };
}

const hardened = (uid: number) => ({ runAsUser: uid, runAsGroup: uid, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } });

const pods = async (selector: string): Promise<PodObj[]> => (await getJson<{ items: PodObj[] }>(['-n', ns.name, 'pods', '-l', selector])).items.filter((p) => !p.metadata.deletionTimestamp);

/** A host pid in the pod whose command line matches (the pod's cgroup names its uid). */
function podPid(podUid: string, match: (cmd: string) => boolean): number | undefined {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const cmd = readFileSync(`/proc/${d}/cmdline`, 'utf8').replace(/\0/g, ' ');
      const cgroup = readFileSync(`/proc/${d}/cgroup`, 'utf8');
      if (match(cmd) && (cgroup.includes(`pod${podUid}`) || cgroup.includes(`pod${podUid.replace(/-/g, '_')}`))) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  return undefined;
}

async function agentStatus(ip: string): Promise<{ containers: { name: string; stored: number; restores: number; lastRestore: { fds: number } | null }[] }> {
  const r = await fetch(`http://${ip}:${AGENT_PORT}/status`);
  return (await r.json()) as never;
}

beforeAll(async () => {
  image = await injectImage();
  await applyCrds();
  const kubeconfig = await operatorKubeconfig(ns.name);
  const tls = makeTls({ dns: ['localhost'], ips: ['127.0.0.1'] });
  op = startOperator(kubeconfig, ns.name, [
    '--webhook', '127.0.0.1:0', '--webhook-cert', tls.certFile, '--webhook-key', tls.keyFile,
    '--inject-sidecar', JSON.stringify({ image, pullPolicy: 'Never', configPoll: '1s' }),
  ]);
  const listening = await waitFor(() => op.logs.find((l) => l.msg === 'webhook listening'), 60_000, 'the webhook listening');
  const port = /:(\d+)$/.exec(String(listening.address))![1];
  await kubectl(['label', 'ns', ns.name, `fdstore.dev/inject-test=${ns.name}`]);
  // The API server runs on this host: it reaches the webhook on loopback. Only this test's namespace.
  await apply({
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'MutatingWebhookConfiguration', metadata: { name: WEBHOOK },
    webhooks: [{
      name: 'inject.fdstore.dev', admissionReviewVersions: ['v1'], sideEffects: 'None', failurePolicy: 'Ignore', timeoutSeconds: 5, reinvocationPolicy: 'IfNeeded',
      clientConfig: { url: `https://127.0.0.1:${port}/inject`, caBundle: Buffer.from(tls.ca).toString('base64') },
      rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'], scope: 'Namespaced' }],
      namespaceSelector: { matchLabels: { 'fdstore.dev/inject-test': ns.name } },
      objectSelector: { matchExpressions: [{ key: 'fdstore.dev/inject', operator: 'NotIn', values: ['false'] }] },
    }],
  });
  await apply({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'demo' }, data: { 'server.py': readFileSync(join(REPO, 'demo/server.py'), 'utf8') } }, ns.name);
}, 600_000);

afterAll(async () => {
  await kubectlRun(['delete', 'mutatingwebhookconfiguration', WEBHOOK, '--ignore-not-found']);
  await op?.stop();
});

describe('the injector, called by the 1.20 API server', () => {
  it('a Deployment that never mentions fdstore gets the sidecar after a policy selects it and a rollout restart; a container restart drops nothing', async () => {
    const node = kubeEnv().nodeImage;
    await apply({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
      spec: {
        replicas: 1, selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: {
            terminationGracePeriodSeconds: 2,
            containers: [
              { name: 'web', image: node, imagePullPolicy: 'Never', command: ['python3', '-u', '/opt/demo/server.py', '8080', '0.0.0.0'], securityContext: hardened(10001), volumeMounts: [{ name: 'demo', mountPath: '/opt/demo', readOnly: true }] },
              // No command: its image's entrypoint is unknown to the webhook; left alone, with an Event.
              { name: 'idle', image: node, imagePullPolicy: 'Never', args: ['sleep', 'infinity'], securityContext: hardened(10001) },
            ],
            volumes: [{ name: 'demo', configMap: { name: 'demo' } }],
          },
        },
      },
    }, ns.name);
    const before = await waitFor(async () => (await pods('app=web')).find((p) => p.status.phase === 'Running'), 120_000, 'the plain pod running');
    expect(before.spec.containers.map((c) => c.name)).toEqual(['web', 'idle']);

    await apply({ apiVersion: 'fdstore.dev/v1alpha1', kind: 'FdStorePolicy', metadata: { name: 'inject' }, spec: { selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'job'] }] }, injection: { enabled: true }, defaults: { fileDescriptorStoreMax: 16 } } }, ns.name);
    // The injector reads policies from its cache: wait until it has this one (the next admission uses it).
    // The policy's status is written from the operator's cache: then the injector sees the policy too.
    await waitFor(async () => (await kubectl(['-n', ns.name, 'get', 'fdstorepolicy', 'inject', '-o', 'jsonpath={.status.conditions[?(@.type=="Accepted")].status}'])).trim() === 'True' || undefined, 60_000, 'the policy accepted');
    await kubectl(['-n', ns.name, 'rollout', 'restart', 'deployment/web']);
    const pod = await waitFor(async () => (await pods('app=web')).find((p) => p.metadata.uid !== before.metadata.uid && p.status.containerStatuses?.every((c) => c.ready)), 180_000, 'the injected pod ready');

    expect(pod.spec.shareProcessNamespace).toBe(true);
    expect(pod.spec.initContainers?.map((c) => c.name)).toEqual(['fdstore-prepare']);
    expect(pod.spec.containers.map((c) => c.name)).toEqual(['fdstore-keeper', 'fdstore', 'web', 'idle']);
    expect(pod.spec.containers[3]!.command).toBeUndefined();
    expect(pod.spec.containers[2]!.command).toEqual(['/run/fdstore/fdstore-exec', '--wait-ms', '30000', '--', 'python3', '-u', '/opt/demo/server.py', '8080', '0.0.0.0']);
    expect(pod.metadata.labels?.['fdstore.dev/enrolled']).toBe('true');
    expect(JSON.parse(pod.metadata.annotations!['fdstore.dev/injected']!)).toMatchObject({ mode: 'classic', policy: 'inject', containers: ['web'], unwrapped: { idle: expect.stringMatching(/^no command/) } });
    const event = await waitFor(async () => (await getJson<{ items: { reason: string; type: string; message: string; involvedObject: { name: string } }[] }>(['-n', ns.name, 'events'])).items
      .find((e) => e.reason === 'ContainerNotWrapped' && e.involvedObject.name === pod.metadata.name), 60_000, 'the ContainerNotWrapped Event');
    expect([event.type, event.message]).toEqual(['Warning', expect.stringContaining('container idle (no command')]);
    expect(JSON.parse(pod.metadata.annotations!['fdstore.dev/config']!)).toMatchObject({ defaults: { fileDescriptorStoreMax: 16 } });
    expect(await op.metric('fdstore_operator_admission_reviews_total', { result: 'injected' })).toBeGreaterThanOrEqual(1);

    const ip = pod.status.podIP!;
    const stored = await waitFor(async () => (await agentStatus(ip)).containers.find((c) => c.name === 'web' && c.stored >= 1), 60_000, 'the app\'s listening socket stored');
    expect(stored.stored).toBeGreaterThanOrEqual(1);
    const served = await fetch(`http://${ip}:8080/`);
    expect(served.status).toBe(200);

    // Kill the app (not the agent): the kubelet restarts the container, the launcher gets the socket back.
    const pid = podPid(pod.metadata.uid, (c) => c.includes('demo/server.py'));
    expect(pid).toBeDefined();
    process.kill(pid!, 'SIGKILL');
    await waitFor(async () => (await pods('app=web')).find((p) => p.metadata.uid === pod.metadata.uid && p.status.containerStatuses?.find((c) => c.name === 'web' && c.restartCount >= 1 && c.ready)), 120_000, 'the app restarted');
    const after = (await agentStatus(ip)).containers.find((c) => c.name === 'web')!;
    expect(after.restores).toBeGreaterThanOrEqual(2);
    expect(after.lastRestore?.fds).toBeGreaterThanOrEqual(1);
    expect((await fetch(`http://${ip}:8080/`)).status).toBe(200);
  });

  it('a Job finishes: its pod is injected (classic) and the agent exits once the app is done', async () => {
    await apply({
      apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'job' },
      spec: {
        backoffLimit: 0,
        template: {
          metadata: { labels: { app: 'job' } },
          spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 2, containers: [{ name: 'batch', image: kubeEnv().nodeImage, imagePullPolicy: 'Never', command: ['python3', '-c', 'print("done")'], securityContext: hardened(10001) }] },
        },
      },
    }, ns.name);
    await waitFor(async () => (await getJson<{ status: { succeeded?: number; failed?: number } }>(['-n', ns.name, 'job', 'job'])).status.succeeded === 1 || undefined, 180_000, 'the Job succeeded');
    const [pod] = await pods('job-name=job');
    // no keeper in a Job's classic pod: it would never exit
    expect(pod!.spec.containers.map((c) => c.name)).toEqual(['fdstore', 'batch']);
    expect(pod!.spec.containers[0]!.args?.slice(-2)).toEqual(['--exit-when-done', '0s']);
    expect(pod!.status.containerStatuses?.map((c) => [c.name, c.state.terminated?.exitCode]).sort()).toEqual([['batch', 0], ['fdstore', 0]]);
  });
});
