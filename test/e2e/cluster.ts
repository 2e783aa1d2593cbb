/**
 * The e2e test's edges on the real cluster: helm with the cluster's kubeconfig, the agent's
 * `fdstore ls` through `kubectl exec`, an app container's host pid from the node's containerd,
 * /proc of a host pid, and a real Prometheus scraping the agents the chart's PodMonitor selects.
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

interface PodList {
  items: {
    metadata: { name: string; namespace: string };
    status: { podIP?: string };
    spec: { containers: { ports?: { name?: string; containerPort: number }[] }[]; initContainers?: { ports?: { name?: string; containerPort: number }[] }[] };
  }[];
}

/**
 * What the Prometheus Operator makes of the chart's PodMonitor, by hand: Debian's Prometheus
 * is built without Kubernetes discovery, so the test discovers instead, with the PodMonitor's
 * own selector (its matchLabels, in the namespaces its namespaceSelector names) and port name
 * (containers and init containers, as native sidecars are), and hands Prometheus the targets
 * as a file_sd file. Returns the scrape config.
 */
export async function scrapeConfigFromPodMonitor(manifests: string, namespaces: string[], dir: string): Promise<object> {
  const pm = parseAllDocuments(manifests).map((d) => d.toJS() as PodMonitor).find((o) => o?.kind === 'PodMonitor');
  if (!pm) throw new Error('the render has no PodMonitor');
  const ep = pm.spec.podMetricsEndpoints[0]!;
  const names = pm.spec.namespaceSelector.any ? namespaces : pm.spec.namespaceSelector.matchNames ?? namespaces;
  const selector = Object.entries(pm.spec.selector.matchLabels).map(([k, v]) => `${k}=${v}`).join(',');
  const groups: { targets: string[]; labels: Record<string, string> }[] = [];
  for (const n of names) {
    const pods = await getJson<PodList>(['-n', n, 'pods', '-l', selector]);
    for (const p of pods.items) {
      const ports = [...p.spec.containers, ...(p.spec.initContainers ?? [])].flatMap((c) => c.ports ?? []).filter((x) => x.name === ep.port);
      if (!p.status.podIP) continue;
      for (const port of ports) groups.push({ targets: [`${p.status.podIP}:${port.containerPort}`], labels: { namespace: p.metadata.namespace, pod: p.metadata.name } });
    }
  }
  if (groups.length === 0) throw new Error(`no pod in ${names.join(',')} matches the PodMonitor (${selector}, port ${ep.port})`);
  const file = join(dir, 'targets.json');
  writeFileSync(file, JSON.stringify(groups));
  return { job_name: 'fdstore-agents', scrape_interval: '2s', scrape_timeout: '2s', metrics_path: ep.path, file_sd_configs: [{ files: [file] }] };
}

/** Debian's Prometheus on the host (pod IPs are reachable through the CNI bridge). */
export async function startPrometheus(dir: string, scrape: object, port: number): Promise<Prometheus> {
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
  await waitFor(async () => (await fetch(`http://127.0.0.1:${port}/-/ready`)).ok, 60_000, 'Prometheus ready').catch((e: Error) => {
    child.kill('SIGKILL');
    throw new Error(`${e.message}\n${stderr}`);
  });
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
