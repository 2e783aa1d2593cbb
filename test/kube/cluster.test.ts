/**
 * The harness itself, against the real cluster: the node is Ready; a pod runs the agent from this
 * checkout (hostPath, read-only) in the node image as the e2e test's agent uid, in a shared PID
 * namespace; the host reaches the agent's /healthz on the pod IP; a downwardAPI volume projects the
 * fdstore.dev/config annotation (how the operator will hand the agent its configuration) and the
 * kubelet rewrites the file when the annotation changes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { AGENT_UID, APP_UID } from '../helpers/uids.js';
import { join } from 'node:path';
import { REPO, apply, freshNamespace, getJson, importImage, kubeEnv, kubectl, podIP, podReady, run, waitFor } from './cluster.js';

const ns = freshNamespace('cluster');
const POD = 'agent';
const HTTP_PORT = 9721;
const CONFIG_ANNOTATION = 'fdstore.dev/config';
/**
 * An annotation change is a pod update, which the kubelet syncs at once (its 1 min periodic resync is
 * not involved): measured 0.65-2.8 s here on two busy cores (scripts/kube/README.md). The bound leaves room for load.
 */
const DOWNWARD_API_MAX_MS = 30_000;
/** A few changes in a row: the second and third land at a random point of the kubelet's sync cycle. */
const CONFIG_CHANGES = 3;

const sec = (uid: number) => ({
  runAsUser: uid, runAsGroup: uid, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] },
});

function agentPod(image: string, config: string): object {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: POD, annotations: { [CONFIG_ANNOTATION]: config } },
    spec: {
      shareProcessNamespace: true,
      terminationGracePeriodSeconds: 1,
      volumes: [
        { name: 'repo', hostPath: { path: REPO, type: 'Directory' } },
        { name: 'run', emptyDir: {} },
        { name: 'config', downwardAPI: { items: [{ path: 'config', fieldRef: { fieldPath: `metadata.annotations['${CONFIG_ANNOTATION}']` } }] } },
      ],
      containers: [
        {
          name: 'fdstore',
          image,
          imagePullPolicy: 'Never', // no registry: the image was imported by up.sh
          command: ['node', '/opt/fdstore/bin/fdstore.js', 'agent', '--run-dir', '/run/fdstore', '--container', 'app',
            '--http', `0.0.0.0:${HTTP_PORT}`],
          securityContext: sec(AGENT_UID),
          readinessProbe: { httpGet: { path: '/healthz', port: HTTP_PORT }, periodSeconds: 1 },
          volumeMounts: [
            { name: 'repo', mountPath: '/opt/fdstore', readOnly: true },
            { name: 'run', mountPath: '/run/fdstore' },
            { name: 'config', mountPath: '/etc/fdstore', readOnly: true },
          ],
        },
        { name: 'app', image, imagePullPolicy: 'Never', command: ['sleep', 'infinity'], securityContext: sec(APP_UID) },
      ],
    },
  };
}

const readConfig = (): Promise<string> => kubectl(['-n', ns.name, 'exec', POD, '-c', 'fdstore', '--', 'cat', '/etc/fdstore/config']);

describe('the one-node cluster', () => {
  it('has one Ready node running the 1.20 kubelet', async () => {
    const node = await getJson<{ status: { conditions: { type: string; status: string }[]; nodeInfo: { kubeletVersion: string } } }>(
      ['node', kubeEnv().nodeName]);
    expect(node.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
    expect(node.status.nodeInfo.kubeletVersion).toBe('v1.20.2');
  });

  it('imports a docker-archive into the node\'s containerd (again: idempotent)', async () => {
    const k = kubeEnv();
    expect(await importImage(join(k.cache, 'images', 'pause.tar'))).toEqual([k.pauseImage]);
  });

  it('has helm 4 talking to it', async () => {
    const k = kubeEnv();
    const version = await run(k.helm, ['version', '--short']);
    expect(version.stdout).toMatch(/^v4\./);
    const list = await run(k.helm, ['--kubeconfig', k.kubeconfig, 'list', '-n', ns.name, '-o', 'json']);
    expect({ code: list.code, stderr: list.stderr }).toEqual({ code: 0, stderr: '' });
    expect(JSON.parse(list.stdout)).toEqual([]);
  });

  describe('a pod running the agent from this checkout', () => {
    beforeAll(async () => {
      await apply(agentPod(kubeEnv().nodeImage, 'fileDescriptorStoreMax: 16\n'), ns.name);
      await podReady(ns.name, POD);
    });

    it('serves /healthz on the pod IP to the host', async () => {
      const ip = await podIP(ns.name, POD);
      const res = await fetch(`http://${ip}:${HTTP_PORT}/healthz`, { signal: AbortSignal.timeout(10_000) });
      expect(res.status).toBe(200);
    });

    it('runs as the agent uid, seen from the app container through the shared PID namespace', async () => {
      const ps = await kubectl(['-n', ns.name, 'exec', POD, '-c', 'app', '--', 'ps', '-e', '-o', 'uid=,args=']);
      const agent = ps.split('\n').find((l) => l.includes('/opt/fdstore/bin/fdstore.js agent'));
      expect(agent?.trim().split(/\s+/)[0]).toBe(String(AGENT_UID));
      expect(ps).toMatch(/^\s*0\s+\/pause -P$/m); // PID 1 of the pod is the pause process
    });

    it('projects the config annotation into a file and rewrites it when the annotation changes', async () => {
      expect(await readConfig()).toBe('fileDescriptorStoreMax: 16\n');
      const delays: number[] = [];
      for (let i = 0; i < CONFIG_CHANGES; i++) {
        const next = `fileDescriptorStoreMax: ${32 + i}\n# ${Date.now()}\n`;
        const t0 = Date.now();
        await kubectl(['-n', ns.name, 'annotate', '--overwrite', 'pod', POD, `${CONFIG_ANNOTATION}=${next}`]);
        await waitFor(async () => (await readConfig()) === next, DOWNWARD_API_MAX_MS, 'the new annotation in /etc/fdstore/config', 100);
        delays.push(Date.now() - t0);
      }
      console.log(`downwardAPI: annotation change -> file in the pod: ${delays.join(', ')} ms`);
    });
  });
});
