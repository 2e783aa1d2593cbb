/**
 * The operator step's cluster side: the shared one-node cluster (scripts/kube/up.sh,
 * idempotent; never torn down here), and kwok-style fixtures on it: a fake Node with
 * no kubelet, kept healthy by renewing its Lease, and enrolled Pods bound to it whose
 * status is written through pods/status as its kubelet would. Everything made here
 * carries FIXTURE_LABEL with our pid, so a run that died is cleaned up by the next.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, CustomObjectsApi, KubeConfig, PatchStrategy, setHeaderMiddleware, V1MicroTime, Watch } from '@kubernetes/client-node';
import { URL } from 'node:url';
import { parse } from 'yaml';
import { ROOT, sleep } from './proc.js';
import { clearInterval, setInterval } from 'node:timers';

export const FIXTURE_LABEL = 'fdstore.dev/bench-pid';
const FAKE_TAINT = 'fdstore.dev/bench-node';
/** up.sh waits for the node itself; this only guards against a hang. */
const UP_TIMEOUT_MS = 10 * 60_000;
/** The kubelet renews its Lease every 10 s (a quarter of its 40 s duration); so do we. */
const NODE_LEASE_RENEW_MS = 10_000;
const CONCURRENCY = 16;

/** A MicroTime as the API server parses it (six fraction digits). */
const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

const MERGE = { middleware: [setHeaderMiddleware('Content-Type', PatchStrategy.MergePatch)], middlewareMergeStrategy: 'append' };

/** The cluster's KEY=VALUE lines, or why there is none ({ skipped }). */
export function clusterEnv() {
  return new Promise((resolve) => {
    execFile('bash', [join(ROOT, 'scripts', 'kube', 'up.sh')], { timeout: UP_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) {
        const why = stderr.trim().split('\n').slice(-3).join(' / ') || err.message;
        const root = process.getuid?.() === 0 ? '' : ' (up.sh needs root)';
        return resolve({ skipped: `scripts/kube/up.sh could not bring the cluster up${root}: ${why}` });
      }
      const env = {};
      for (const m of stdout.matchAll(/^([A-Z][A-Z0-9_]*)=(.*)$/gm)) env[m[1]] = m[2];
      if (!env.KUBECONFIG) return resolve({ skipped: 'scripts/kube/up.sh printed no KUBECONFIG' });
      resolve({ env });
    });
  });
}

/** Runs fn over items, `limit` at a time. */
export async function pool(items, limit, fn) {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function pidAlive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === 'EPERM';
  }
}

const statusOf = (e) => e?.code ?? e?.statusCode ?? e?.response?.statusCode;

async function ignore404(p) {
  try {
    return await p;
  } catch (e) {
    if (statusOf(e) !== 404) throw e;
    return undefined;
  }
}

/**
 * Plain HTTPS with keep-alive for the fixtures: client-node 1.4 opens a new TLS
 * connection for every request (measured: 60 connections for 60 calls), which makes
 * 2,000 pod writes a minute-long handshake storm on two busy cores.
 */
class RawApi {
  constructor(kubeconfigFile) {
    const k = parse(readFileSync(kubeconfigFile, 'utf8'));
    const cluster = k.clusters[0].cluster;
    this.server = new URL(cluster.server);
    this.token = k.users[0].user.token;
    this.agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY, ca: Buffer.from(cluster['certificate-authority-data'], 'base64') });
  }

  /** Resolves with the parsed body of a 2xx answer; rejects with `code` set otherwise. */
  call(method, path, body, contentType = 'application/json', timeoutMs = 60_000) {
    const data = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = request({
        host: this.server.hostname, port: this.server.port, method, path, agent: this.agent, timeout: timeoutMs,
        headers: { authorization: `Bearer ${this.token}`, accept: 'application/json', ...(data ? { 'content-type': contentType, 'content-length': Buffer.byteLength(data) } : {}) },
      }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d) => (text += d));
        res.on('end', () => {
          if (res.statusCode >= 200 && res.statusCode < 300) return resolve(text ? JSON.parse(text) : null);
          reject(Object.assign(new Error(`${method} ${path}: HTTP ${res.statusCode}: ${text.slice(0, 300)}`), { code: res.statusCode }));
        });
      });
      req.on('timeout', () => req.destroy(Object.assign(new Error(`${method} ${path}: no answer in ${timeoutMs} ms`), { code: 'timeout' })));
      req.on('error', reject);
      req.end(data);
    });
  }

  close() {
    this.agent.destroy();
  }
}

export class Cluster {
  constructor(env) {
    this.env = env;
    this.kc = new KubeConfig();
    this.kc.loadFromFile(env.KUBECONFIG);
    this.core = this.kc.makeApiClient(CoreV1Api);
    this.coordination = this.kc.makeApiClient(CoordinationV1Api);
    this.custom = this.kc.makeApiClient(CustomObjectsApi);
    this.raw = new RawApi(env.KUBECONFIG);
    this.tag = `${process.pid}-${randomBytes(3).toString('hex')}`;
  }

  /** kubectl (the cluster's 1.34 one) with the admin kubeconfig. */
  kubectl(args) {
    return new Promise((resolve, reject) => {
      execFile(this.env.KUBECTL, ['--kubeconfig', this.env.KUBECONFIG, ...args], { timeout: 120_000, maxBuffer: 64 << 20 }, (err, stdout, stderr) =>
        err ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr.trim() || err.message}`)) : resolve(stdout));
    });
  }

  async applyCrds() {
    await this.kubectl(['apply', '-f', join(ROOT, 'crds')]);
    for (const crd of ['fdstorepolicies.fdstore.dev', 'fdstores.fdstore.dev']) {
      await this.kubectl(['wait', '--for=condition=Established', `crd/${crd}`, '--timeout=60s']);
    }
  }

  /** The API server's RSS (it serves every helper on this machine: noisy). */
  apiserverRss() {
    try {
      const pid = readFileSync(join(this.env.FDSTORE_KUBE_STATE, 'pids', 'kube-apiserver.pid'), 'utf8').trim();
      const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      return m ? Number(m[1]) * 1024 : NaN;
    } catch {
      return NaN;
    }
  }

  /** A kubeconfig for the operator: the admin's token, sent to `server` (the counting proxy) trusting `caPem`. */
  writeKubeconfig(file, server, caPem) {
    const admin = parse(readFileSync(this.env.KUBECONFIG, 'utf8'));
    const token = admin.users[0].user.token;
    writeFileSync(file, JSON.stringify({
      apiVersion: 'v1', kind: 'Config', 'current-context': 'bench',
      clusters: [{ name: 'bench', cluster: { server, 'certificate-authority-data': Buffer.from(caPem).toString('base64') } }],
      users: [{ name: 'bench', user: { token } }],
      contexts: [{ name: 'bench', context: { cluster: 'bench', user: 'bench' } }],
    }));
  }

  /** The API server's address and CA (for the proxy's upstream). */
  upstream() {
    const c = this.kc.getCurrentCluster();
    const ca = c.caData ? Buffer.from(c.caData, 'base64') : readFileSync(c.caFile);
    return { server: c.server, ca };
  }

  /** Nodes and namespaces of bench runs whose process is gone. */
  async deleteStale() {
    const gone = (o) => {
      const pid = Number(o.metadata?.labels?.[FIXTURE_LABEL]);
      return Number.isInteger(pid) && pid > 0 && !pidAlive(pid);
    };
    for (const ns of (await this.core.listNamespace({ labelSelector: FIXTURE_LABEL })).items.filter(gone)) await this.deleteNamespace(ns.metadata.name);
    for (const n of (await this.core.listNode({ labelSelector: FIXTURE_LABEL })).items.filter(gone)) await this.deleteNode(n.metadata.name);
  }

  /**
   * A Node no kubelet serves (kwok's way): cordoned and tainted so nothing else is ever
   * scheduled to it, Ready, and kept Ready by renewing its Lease in kube-node-lease
   * (the node lifecycle controller would otherwise mark it Unknown after 40 s and
   * taint it for eviction; the bench pods also tolerate that, for the worst case).
   */
  async fakeNode() {
    const name = `fdstore-bench-node-${this.tag}`;
    const labels = { [FIXTURE_LABEL]: String(process.pid), 'kubernetes.io/hostname': name, type: 'fdstore-bench-fake' };
    const node = await this.core.createNode({ body: {
      apiVersion: 'v1', kind: 'Node', metadata: { name, labels },
      spec: { unschedulable: true, taints: [{ key: FAKE_TAINT, value: 'fake', effect: 'NoSchedule' }] },
    } });
    try {
      return await this.keepHealthy(node);
    } catch (e) {
      await this.deleteNode(name).catch(() => {});
      throw e;
    }
  }

  /** Ready in its status, and its Lease renewed from now on (as a kubelet does). */
  async keepHealthy(node) {
    const { name, labels } = node.metadata;
    const now = new Date().toISOString();
    const capacity = { cpu: '64', memory: '256Gi', pods: '5000' };
    await this.core.patchNodeStatus({ name, body: { status: {
      capacity, allocatable: capacity,
      conditions: [{ type: 'Ready', status: 'True', reason: 'FdstoreBench', message: 'simulated by the fdstore bench: no kubelet', lastHeartbeatTime: now, lastTransitionTime: now }],
    } } }, MERGE);
    const lease = { metadata: { name, namespace: 'kube-node-lease', labels,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata.uid }] },
    spec: { holderIdentity: name, leaseDurationSeconds: 40, renewTime: new V1MicroTime(Date.now()) } };
    await this.coordination.createNamespacedLease({ namespace: 'kube-node-lease', body: lease });
    const timer = setInterval(() => {
      this.coordination.patchNamespacedLease({ namespace: 'kube-node-lease', name, body: { spec: { renewTime: microTime() } } }, MERGE)
        .catch(() => {}); // a missed renewal is retried in 10 s; the lease lasts 40 s
    }, NODE_LEASE_RENEW_MS);
    return {
      name,
      remove: async () => {
        clearInterval(timer);
        await this.deleteNode(name);
      },
    };
  }

  createPolicy(policy) {
    return this.custom.createNamespacedCustomObject({
      group: 'fdstore.dev', version: 'v1alpha1', namespace: policy.metadata.namespace, plural: 'fdstorepolicies', body: policy,
    });
  }

  /** Watches the FdStores of ns: calls onStore(name, store) for every add or change; restarted when it ends, until stop(). */
  watchStores(ns, onStore) {
    const watch = new Watch(this.kc);
    let stopped = false;
    let ac = null;
    const start = async () => {
      const again = () => !stopped && setTimeout(() => void start(), 1_000);
      try {
        ac = await watch.watch(`/apis/fdstore.dev/v1alpha1/namespaces/${ns}/fdstores`, {}, (type, obj) => {
          if (type === 'ADDED' || type === 'MODIFIED') onStore(obj.metadata.name, obj);
        }, () => again());
      } catch {
        again();
      }
    };
    void start();
    return { stop: () => { stopped = true; ac?.abort(); } };
  }

  async deleteNode(name) {
    await ignore404(this.core.deleteNode({ name }));
    await ignore404(this.coordination.deleteNamespacedLease({ namespace: 'kube-node-lease', name }));
  }

  async namespace(prefix) {
    const name = `${prefix}-${this.tag}-${randomBytes(2).toString('hex')}`.slice(0, 63);
    await this.core.createNamespace({ body: { metadata: { name, labels: { [FIXTURE_LABEL]: String(process.pid) } } } });
    // Pods need the namespace's default ServiceAccount, which the controller-manager makes a moment later.
    const deadline = Date.now() + 60_000;
    while (!(await ignore404(this.core.readNamespacedServiceAccount({ namespace: name, name: 'default' })))) {
      if (Date.now() > deadline) throw new Error(`no ServiceAccount ${name}/default after 60 s`);
      await sleep(200);
    }
    return name;
  }

  /**
   * The namespace, which the namespace controller empties in the background: the bench
   * pods have terminationGracePeriodSeconds 0, so they go at once without a kubelet
   * (a pod left behind on the deleted fake node is removed by the pod GC).
   */
  async deleteNamespace(name) {
    await ignore404(this.raw.call('DELETE', `/api/v1/namespaces/${name}`));
  }

  /**
   * n enrolled pods bound to `nodeName` (so the scheduler and the real kubelet leave
   * them alone), each with its agent's port in the annotation the operator reads, then
   * Running with podIP 127.0.0.1 through pods/status, as a kubelet reports it.
   */
  async createPods(ns, nodeName, ports, labels) {
    const names = ports.map((_, i) => `bench-${String(i).padStart(5, '0')}`);
    const pods = `/api/v1/namespaces/${ns}/pods`;
    await pool(names, CONCURRENCY, (name, i) => this.raw.call('POST', pods, benchPod(name, nodeName, ports[i], labels)));
    const now = new Date().toISOString();
    const cond = (type) => ({ type, status: 'True', lastTransitionTime: now });
    const status = {
      phase: 'Running', hostIP: '127.0.0.1', podIP: '127.0.0.1', podIPs: [{ ip: '127.0.0.1' }], startTime: now, qosClass: 'BestEffort',
      conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map(cond),
      containerStatuses: ['app', 'fdstore'].map((c) => ({
        name: c, ready: true, restartCount: 0, started: true, image: `fdstore-bench/${c}:sim`, imageID: '', containerID: `containerd://sim-${c}`,
        state: { running: { startedAt: now } }, lastState: {},
      })),
    };
    await pool(names, CONCURRENCY, (name) => this.raw.call('PATCH', `${pods}/${name}/status`, { status }, PatchStrategy.MergePatch));
    return names;
  }

  close() {
    this.raw.close();
  }
}

/** An enrolled pod as the chart renders one (sidecar, downwardAPI config volume), minus what never runs. */
function benchPod(name, nodeName, port, labels) {
  const toleration = (key) => ({ key, operator: 'Exists', effect: 'NoExecute' });
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels: { 'fdstore.dev/enrolled': 'true', ...labels }, annotations: { 'fdstore.dev/agent-port': String(port) } },
    spec: {
      nodeName,
      // No tolerationSeconds: never evicted if the fake node looks unhealthy.
      tolerations: [toleration('node.kubernetes.io/not-ready'), toleration('node.kubernetes.io/unreachable'), { key: FAKE_TAINT, operator: 'Exists' }],
      // Deleted at once: there is no kubelet to confirm a graceful deletion.
      terminationGracePeriodSeconds: 0,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      shareProcessNamespace: true,
      volumes: [
        { name: 'run', emptyDir: {} },
        { name: 'config', downwardAPI: { items: [{ path: 'config', fieldRef: { fieldPath: "metadata.annotations['fdstore.dev/config']" } }] } },
      ],
      containers: [
        {
          name: 'fdstore', image: 'fdstore-bench/fdstore:sim',
          args: ['agent', '--run-dir', '/run/fdstore', '--container', 'app', '--config', '/etc/fdstore/config', '--http', `0.0.0.0:${port}`],
          ports: [{ name: 'fdstore-http', containerPort: port }],
          volumeMounts: [{ name: 'run', mountPath: '/run/fdstore' }, { name: 'config', mountPath: '/etc/fdstore', readOnly: true }],
        },
        {
          name: 'app', image: 'fdstore-bench/app:sim', command: ['/run/fdstore/fdstore-exec', '--', 'server'],
          env: [{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }],
          volumeMounts: [{ name: 'run', mountPath: '/run/fdstore', subPath: 'app' }],
        },
      ],
    },
  };
}
