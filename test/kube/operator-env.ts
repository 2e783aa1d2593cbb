/**
 * What the operator's kube tests share: the CRDs applied, a ServiceAccount bound to
 * exactly the RBAC the chart ships (charts/fdstore/files/operator-rbac.yaml) and a
 * kubeconfig with its token, operator processes run from this checkout, and a pod
 * with the agent (from this checkout, hostPath) and the demo app behind the launcher.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseAllDocuments } from 'yaml';
import { AGENT_UID, APP_UID } from '../helpers/uids.js';
import { REPO, apply, kubeEnv, kubectl, waitFor } from './cluster.js';

export const RBAC_FILE = join(REPO, 'charts/fdstore/files/operator-rbac.yaml');
export const AGENT_PORT = 9721;

export async function applyCrds(): Promise<void> {
  await kubectl(['apply', '-f', join(REPO, 'crds')]);
  for (const crd of ['fdstorepolicies.fdstore.dev', 'fdstores.fdstore.dev']) {
    await kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=60s']);
  }
}

interface RbacDoc {
  kind: string;
  metadata: { name: string; namespace?: string };
  [k: string]: unknown;
}

/**
 * The ServiceAccount `fdstore-operator` in ns, bound to the shipped ClusterRole and
 * (for its Lease) Role, and a kubeconfig that authenticates as it: the operator under
 * test can do exactly what the chart lets it do, nothing more.
 */
export async function operatorKubeconfig(ns: string): Promise<string> {
  const docs = parseAllDocuments(readFileSync(RBAC_FILE, 'utf8')).map((d) => d.toJS() as RbacDoc).filter((d) => d);
  const sa = 'fdstore-operator';
  await apply({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: sa } }, ns);
  for (const d of docs) {
    if (d.kind === 'ClusterRole') {
      await apply(d);
      await apply({
        apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: `${d.metadata.name}-${ns}` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: d.metadata.name },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      });
    } else if (d.kind === 'Role') {
      await apply({ ...d, metadata: { ...d.metadata, namespace: ns } }, ns);
      await apply({
        apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: d.metadata.name, namespace: ns },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: d.metadata.name },
        subjects: [{ kind: 'ServiceAccount', name: sa, namespace: ns }],
      }, ns);
    }
  }
  // 1.20 makes a token Secret per ServiceAccount (the TokenRequest API is also there, but this is simpler).
  const secret = await waitFor(async () => (await kubectl(['-n', ns, 'get', 'sa', sa, '-o', 'jsonpath={.secrets[0].name}'])).trim() || undefined, 60_000, 'the ServiceAccount token secret');
  const token = Buffer.from((await kubectl(['-n', ns, 'get', 'secret', secret, '-o', 'jsonpath={.data.token}'])).trim(), 'base64').toString();
  const view = JSON.parse(await kubectl(['config', 'view', '--raw', '--minify', '-o', 'json'])) as {
    clusters: { cluster: { server: string; 'certificate-authority-data'?: string; 'certificate-authority'?: string } }[];
  };
  const cluster = view.clusters[0]!.cluster;
  const ca = cluster['certificate-authority-data'] ?? Buffer.from(readFileSync(cluster['certificate-authority']!)).toString('base64');
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-op-'));
  const file = join(dir, 'kubeconfig');
  writeFileSync(file, JSON.stringify({
    apiVersion: 'v1', kind: 'Config', 'current-context': 'op',
    clusters: [{ name: 'c', cluster: { server: cluster.server, 'certificate-authority-data': ca } }],
    users: [{ name: 'op', user: { token } }],
    contexts: [{ name: 'op', context: { cluster: 'c', user: 'op', namespace: ns } }],
  }));
  return file;
}

export interface OperatorProc {
  proc: ChildProcess;
  logs: Record<string, unknown>[];
  /** http://127.0.0.1:PORT once it listens. */
  url: Promise<string>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startOperator(kubeconfig: string, ns: string, extra: string[] = []): OperatorProc {
  const proc = spawn(process.execPath, [join(REPO, 'bin/fdstore.js'), 'operator', '--kubeconfig', kubeconfig, '--namespace', ns,
    '--lease-namespace', ns, '--http', '127.0.0.1:0', '--log-level', 'debug', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
  const logs: Record<string, unknown>[] = [];
  let gotUrl!: (u: string) => void;
  const url = new Promise<string>((r) => (gotUrl = r));
  createInterface({ input: proc.stderr! }).on('line', (line) => {
    let rec: Record<string, unknown>;
    try {
      rec = JSON.parse(line) as Record<string, unknown>;
    } catch {
      rec = { msg: line };
    }
    logs.push(rec);
    if (rec.msg === 'http listening') gotUrl(`http://${String(rec.address)}`);
  });
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  return {
    proc,
    logs,
    url,
    metric: async (name, labels = {}) => {
      const text = await (await fetch(`${await url}/metrics`)).text();
      let sum = 0;
      for (const line of text.split('\n')) {
        if (!line.startsWith(name)) continue;
        const m = /^(\w+)(\{[^}]*\})? (\S+)$/.exec(line);
        if (!m || m[1] !== name) continue;
        const ls = m[2] ?? '';
        if (Object.entries(labels).every(([k, v]) => ls.includes(`${k}="${v}"`))) sum += Number(m[3]);
      }
      return sum;
    },
    stop: async (signal = 'SIGTERM') => {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      return exited;
    },
  };
}

const sec = (uid: number) => ({
  runAsUser: uid, runAsGroup: uid, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] },
});

/**
 * The pod the chart's sidecar template will render (classic mode, 1.20): the agent
 * from this checkout, configured by the projected annotation, the demo app behind
 * the launcher storing its listening socket.
 */
export function enrolledPod(name: string, labels: Record<string, string>): object {
  const appCmd = 'while [ ! -x /run/fdstore/fdstore-exec ]; do sleep 0.05; done; exec /run/fdstore/fdstore-exec -- python3 -u /opt/fdstore/demo/server.py 8080';
  const image = kubeEnv().nodeImage;
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels: { 'fdstore.dev/enrolled': 'true', ...labels } },
    spec: {
      shareProcessNamespace: true,
      terminationGracePeriodSeconds: 2,
      volumes: [
        { name: 'repo', hostPath: { path: REPO, type: 'Directory' } },
        { name: 'run', emptyDir: {} },
        { name: 'config', downwardAPI: { items: [{ path: 'config', fieldRef: { fieldPath: "metadata.annotations['fdstore.dev/config']" } }] } },
      ],
      // Classic mode (1.20 has no native sidecars): the app's subPath directory must exist,
      // owned by the agent, before the kubelet mounts it (it would make it root's).
      initContainers: [{
        name: 'fdstore-init', image, imagePullPolicy: 'Never', command: ['mkdir', '-p', '-m', '0755', '/run/fdstore/app'],
        securityContext: sec(AGENT_UID), volumeMounts: [{ name: 'run', mountPath: '/run/fdstore' }],
      }],
      containers: [
        {
          name: 'fdstore', image, imagePullPolicy: 'Never',
          command: ['node', '/opt/fdstore/bin/fdstore.js', 'agent', '--run-dir', '/run/fdstore', '--container', 'app',
            '--config', '/etc/fdstore/config', '--config-poll', '1s', '--http', `0.0.0.0:${AGENT_PORT}`],
          ports: [{ name: 'fdstore-http', containerPort: AGENT_PORT }],
          securityContext: sec(AGENT_UID),
          readinessProbe: { httpGet: { path: '/healthz', port: AGENT_PORT }, periodSeconds: 1 },
          volumeMounts: [
            { name: 'repo', mountPath: '/opt/fdstore', readOnly: true },
            { name: 'run', mountPath: '/run/fdstore' },
            { name: 'config', mountPath: '/etc/fdstore', readOnly: true },
          ],
        },
        {
          name: 'app', image, imagePullPolicy: 'Never',
          command: ['sh', '-c', appCmd],
          env: [{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }],
          securityContext: sec(APP_UID),
          readinessProbe: { httpGet: { path: '/readyz/app', port: AGENT_PORT }, periodSeconds: 1 },
          volumeMounts: [
            { name: 'repo', mountPath: '/opt/fdstore', readOnly: true },
            { name: 'run', mountPath: '/run/fdstore', subPath: 'app' },
          ],
        },
      ],
    },
  };
}
