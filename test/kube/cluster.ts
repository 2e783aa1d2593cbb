/**
 * Helpers for tests against the real one-node cluster (scripts/kube/, started by
 * test/kube/global-setup.ts): kubectl 1.34 with the cluster's admin kubeconfig, polling for a
 * condition with a deadline, a namespace per test file, image import into the node's containerd.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll } from 'vitest';
import { REPO } from '../helpers/proc.js';

export { REPO };

export interface KubeEnv {
  kubeconfig: string;
  kubectl: string;
  helm: string;
  /** localhost/fdstore-kube/node:<sha16>: bookworm + python3 + procps + the host's node */
  nodeImage: string;
  pauseImage: string;
  /** the node's containerd socket (ctr --address) */
  ctrSock: string;
  nodeName: string;
  nodeIP: string;
  /** scripts/kube/setup.sh's cache: bin/, images/*.tar */
  cache: string;
}

export function kubeEnv(): KubeEnv {
  const e = process.env;
  const need = (k: string): string => {
    const v = e[k];
    if (!v) throw new Error(`${k} is not set: run the kube tests with npm run test:kube (its global setup starts the cluster)`);
    return v;
  };
  return {
    kubeconfig: need('KUBECONFIG'), kubectl: need('KUBECTL'), helm: need('HELM'), nodeImage: need('FDSTORE_KUBE_NODE_IMAGE'),
    pauseImage: need('FDSTORE_KUBE_PAUSE_IMAGE'), ctrSock: need('FDSTORE_KUBE_CTR_SOCK'), nodeName: need('FDSTORE_KUBE_NODE_NAME'),
    nodeIP: need('FDSTORE_KUBE_NODE_IP'), cache: need('FDSTORE_KUBE_CACHE'),
  };
}

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string;
  timeoutMs?: number;
}

/** Long enough for a `kubectl wait` or a slow apiserver on two busy cores. */
const CMD_TIMEOUT_MS = 120_000;

export function run(file: string, args: string[], o: RunOptions = {}): Promise<CmdResult> {
  return new Promise((done) => {
    const p = execFile(file, args, { timeout: o.timeoutMs ?? CMD_TIMEOUT_MS, killSignal: 'SIGKILL', maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        done({ code, stdout, stderr: err && code === null ? `${stderr}${err.message}` : stderr });
      });
    if (o.input !== undefined) p.stdin?.end(o.input);
  });
}

/** kubectl (the 1.34 one from setup.sh, never the host's), any exit code. */
export function kubectlRun(args: string[], o: RunOptions = {}): Promise<CmdResult> {
  const k = kubeEnv();
  return run(k.kubectl, ['--kubeconfig', k.kubeconfig, ...args], o);
}

/** kubectl; stdout, or an error with its stderr when it exits non-zero. */
export async function kubectl(args: string[], o: RunOptions = {}): Promise<string> {
  const r = await kubectlRun(args, o);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** kubectl apply -f - with an object (JSON is YAML). */
export function apply(obj: object, ns?: string): Promise<string> {
  return kubectl([...(ns ? ['-n', ns] : []), 'apply', '-f', '-'], { input: JSON.stringify(obj) });
}

export async function getJson<T = Record<string, unknown>>(args: string[]): Promise<T> {
  return JSON.parse(await kubectl(['get', ...args, '-o', 'json'])) as T;
}

const POLL_MS = 200;

/**
 * Polls fn until it returns a value other than undefined/false, and returns it; a condition,
 * never a sleep. Throws after timeoutMs, with `what` and the last value or error seen.
 */
export async function waitFor<T>(fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number,
  what = 'condition', intervalMs = POLL_MS): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
      last = v;
    } catch (e) {
      last = e;
    }
    if (Date.now() >= end) {
      const why = last instanceof Error ? last.message : JSON.stringify(last);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${why})`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Marks the namespaces of test runs, so a run that died is cleaned up by the next one. */
const OWNER_LABEL = 'fdstore.dev/test-pid';

export interface Namespace {
  readonly name: string;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Namespaces whose test process is gone (the cluster is on this machine: pids are comparable). */
async function deleteStaleNamespaces(): Promise<void> {
  const list = await getJson<{ items: { metadata: { name: string; labels?: Record<string, string> } }[] }>(['ns', '-l', OWNER_LABEL]);
  for (const n of list.items) {
    const pid = Number(n.metadata.labels?.[OWNER_LABEL]);
    if (Number.isInteger(pid) && pid > 0 && !pidAlive(pid)) await deleteNamespace(n.metadata.name);
  }
}

/**
 * Pods first with a 1 s grace (the namespace controller alone takes 15-60 s with its back-off),
 * then the namespace; neither is waited for: after its containers stop, a pod object takes
 * another 10-30 s to go (volume teardown, cgroups), which no test needs to sit through.
 */
async function deleteNamespace(name: string): Promise<void> {
  await kubectlRun(['-n', name, 'delete', 'pods', '--all', '--grace-period=1', '--wait=false']);
  await kubectlRun(['delete', 'ns', name, '--wait=false', '--ignore-not-found']);
}

/**
 * A namespace of its own for the calling test file: named now, created before its tests
 * (beforeAll) and deleted after them (afterAll). Call it at the top of a file or describe().
 */
export function freshNamespace(prefix: string): Namespace {
  const name = `${prefix}-${process.pid}-${randomBytes(3).toString('hex')}`.slice(0, 63);
  beforeAll(async () => {
    await deleteStaleNamespaces();
    await apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name, labels: { [OWNER_LABEL]: String(process.pid) } } });
    // pods need the namespace's default ServiceAccount, made by the controller-manager a moment later
    await waitFor(async () => (await kubectlRun(['-n', name, 'get', 'sa', 'default'])).code === 0, 60_000, `ServiceAccount ${name}/default`);
  });
  afterAll(() => deleteNamespace(name));
  return { name };
}

/** Imports a docker-archive tarball into the node's containerd (k8s.io namespace); returns the image names. */
export async function importImage(tarball: string): Promise<string[]> {
  const r = await run('ctr', ['--address', kubeEnv().ctrSock, '-n', 'k8s.io', 'images', 'import', tarball], { timeoutMs: 600_000 });
  if (r.code !== 0) throw new Error(`ctr images import ${tarball} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return [...r.stdout.matchAll(/^unpacking (\S+) \(/gm)].map((m) => m[1]!);
}

/** The pod's IP once it has one (reachable from the host through the CNI bridge). */
export function podIP(ns: string, pod: string, timeoutMs = 60_000): Promise<string> {
  return waitFor(async () => (await kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.status.podIP}'])).trim() || undefined,
    timeoutMs, `an IP for pod ${ns}/${pod}`);
}

/** Waits for the pod's Ready condition (its readiness probes pass). */
export function podReady(ns: string, pod: string, timeoutMs = 120_000): Promise<true> {
  return waitFor(async () => {
    const s = await kubectl(['-n', ns, 'get', 'pod', pod, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']);
    return s.trim() === 'True' || undefined;
  }, timeoutMs, `pod ${ns}/${pod} Ready`);
}
