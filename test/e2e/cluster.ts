/**
 * The e2e test's edges on the real cluster: helm with the cluster's kubeconfig, the agent's
 * `fdstore ls` through `kubectl exec`, an app container's host pid from the node's containerd,
 * /proc of a host pid, and a real Prometheus that discovers the agents as the chart's
 * PodMonitor selects them.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { ContainerStatus, FdRow } from '../../src/admin/protocol.js';
import { getJson, kubeEnv, kubectl, run, waitFor, type CmdResult } from '../kube/cluster.js';

const HELM_HOME = mkdtempSync(join(tmpdir(), 'fdstore-e2e-helm-'));

/** helm (4, from scripts/kube/setup.sh) against the cluster, with a home of its own. */
export function helm(args: string[], timeoutMs = 600_000): Promise<CmdResult> {
  const e = kubeEnv();
  return new Promise((done) => {
    execFile(e.helm, args, {
      timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20,
      env: { ...process.env, KUBECONFIG: e.kubeconfig, HELM_CACHE_HOME: join(HELM_HOME, 'cache'), HELM_CONFIG_HOME: join(HELM_HOME, 'config'), HELM_DATA_HOME: join(HELM_HOME, 'data') },
    }, (err, stdout, stderr) => done({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }));
  });
}

export async function helmOk(args: string[], timeoutMs?: number): Promise<string> {
  const r = await helm(args, timeoutMs);
  if (r.code !== 0) throw new Error(`helm ${args.join(' ')} failed (exit ${r.code}):\n${r.stderr}${r.stdout.slice(-2000)}`);
  return r.stdout;
}

export interface Ls {
  app: ContainerStatus;
  fds: FdRow[];
}

/** `kubectl exec POD -c fdstore -- fdstore ls --json`: what a user types, as JSON. */
export async function ls(ns: string, pod: string): Promise<Ls> {
  const out = await kubectl(['-n', ns, 'exec', pod, '-c', 'fdstore', '--', 'fdstore', 'ls', '--json']);
  const r = JSON.parse(out) as { containers: ContainerStatus[]; fds: FdRow[] };
  const app = r.containers.find((c) => c.name === 'app');
  if (!app) throw new Error(`no container app in fdstore ls: ${out}`);
  return { app, fds: r.fds };
}

interface PodStatus {
  status: { containerStatuses?: { name: string; containerID?: string; restartCount: number; state: Record<string, unknown> }[] };
}

export async function containerStatus(ns: string, pod: string, name: string): Promise<{ id: string | null; restarts: number; running: boolean }> {
  const p = await getJson<PodStatus>(['-n', ns, 'pod', pod]);
  const c = p.status.containerStatuses?.find((s) => s.name === name);
  if (!c) return { id: null, restarts: 0, running: false };
  return { id: c.containerID?.replace(/^containerd:\/\//, '') ?? null, restarts: c.restartCount, running: 'running' in c.state };
}

/** The host pid of a running container's process, from the node's containerd (`ctr tasks ls`). */
export async function hostPid(ns: string, pod: string, name: string): Promise<number> {
  const s = await containerStatus(ns, pod, name);
  if (!s.id || !s.running) throw new Error(`container ${name} of ${pod} is not running`);
  const r = await run('ctr', ['--address', kubeEnv().ctrSock, '-n', 'k8s.io', 'tasks', 'ls']);
  const row = r.stdout.split('\n').map((l) => l.trim().split(/\s+/)).find((c) => c[0] === s.id && c[2] === 'RUNNING');
  if (!row) throw new Error(`no running task ${s.id} in containerd:\n${r.stdout}`);
  return Number(row[1]);
}

/** A field of /proc/PID/status, split on blanks. */
export function procStatus(pid: number, field: string): string[] {
  const m = new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/** The pid as the pod (and so the agent) sees it: the last NSpid entry. */
export function podPid(host: number): number {
  return Number(procStatus(host, 'NSpid').at(-1));
}

export interface EventRow {
  type: string;
  reason: string;
  message: string;
  count?: number;
  source?: { component?: string };
  reportingComponent?: string;
}

export async function podEvents(ns: string, pod: string): Promise<EventRow[]> {
  const l = await getJson<{ items: EventRow[] }>(['-n', ns, 'events', '--field-selector', `involvedObject.kind=Pod,involvedObject.name=${pod}`]);
  return l.items;
}

interface Vector {
  status: string;
  data: { result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

export interface Prometheus {
  query(q: string): Promise<Vector['data']['result']>;
  logs(): string;
  stop(): Promise<void>;
}

interface PodMonitor {
  kind: string;
  spec: { selector: { matchLabels: Record<string, string> }; namespaceSelector: { any?: boolean; matchNames?: string[] }; podMetricsEndpoints: { port: string; path: string }[] };
}

/** A label name as Prometheus' Kubernetes discovery spells it (`fdstore.dev/enrolled` -> `fdstore_dev_enrolled`). */
const promLabel = (k: string): string => k.replace(/[^a-zA-Z0-9_]/g, '_');

/**
 * The scrape config the Prometheus Operator generates from the PodMonitor, by hand: pod
 * discovery in the namespaces it names, kept when every matchLabels label matches and the
 * container port has the endpoint's name.
 */
export function scrapeConfigFromPodMonitor(manifests: string, kubeconfig: string, namespaces: string[]): object {
  const pm = parseAllDocuments(manifests).map((d) => d.toJS() as PodMonitor).find((o) => o?.kind === 'PodMonitor');
  if (!pm) throw new Error('the render has no PodMonitor');
  const ep = pm.spec.podMetricsEndpoints[0]!;
  const names = pm.spec.namespaceSelector.any ? namespaces : pm.spec.namespaceSelector.matchNames ?? namespaces;
  return {
    job_name: 'fdstore-agents',
    scrape_interval: '2s',
    scrape_timeout: '2s',
    metrics_path: ep.path,
    kubernetes_sd_configs: [{ role: 'pod', kubeconfig_file: kubeconfig, namespaces: { names } }],
    relabel_configs: [
      ...Object.entries(pm.spec.selector.matchLabels).map(([k, v]) => ({ source_labels: [`__meta_kubernetes_pod_label_${promLabel(k)}`], regex: v, action: 'keep' })),
      { source_labels: ['__meta_kubernetes_pod_container_port_name'], regex: ep.port, action: 'keep' },
      { source_labels: ['__meta_kubernetes_namespace'], target_label: 'namespace' },
      { source_labels: ['__meta_kubernetes_pod_name'], target_label: 'pod' },
    ],
  };
}

/** Debian's Prometheus on the host (pod IPs are reachable through the CNI bridge). */
export async function startPrometheus(scrape: object, port: number): Promise<Prometheus> {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-e2e-prom-'));
  mkdirSync(join(dir, 'tsdb'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(config, stringify({ global: { evaluation_interval: '2s' }, scrape_configs: [scrape] }));
  const child = spawn('/usr/bin/prometheus', [`--config.file=${config}`, `--storage.tsdb.path=${join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${port}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const exited = new Promise((res) => child.on('close', res));
  const query = async (q: string): Promise<Vector['data']['result']> => {
    const r = await fetch(`http://127.0.0.1:${port}/api/v1/query?query=${encodeURIComponent(q)}`);
    const v = (await r.json()) as Vector;
    if (v.status !== 'success') throw new Error(`query ${q}: ${JSON.stringify(v)}`);
    return v.data.result;
  };
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok, 60_000, `Prometheus ready\n${stderr}`);
  return {
    query,
    logs: () => stderr,
    stop: async () => {
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(t);
    },
  };
}
