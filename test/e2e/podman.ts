/**
 * Real pods for the end-to-end test: runs test/e2e/setup.sh (podman with runc and
 * storage in a cache dir, a debootstrap'd bookworm image with node and python3),
 * writes the Pod YAML, `podman kube play`s it and tears it down.
 */
import { execFile, spawn } from 'node:child_process';
import { chownSync, chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { REPO } from '../helpers/proc.js';

export const AGENT_UID = 64919;
export const APP_UID = 10001;
const SETUP = resolve(REPO, 'test', 'e2e', 'setup.sh');
const POD_PREFIX = 'fdstore-e2e-';

export interface PodmanEnv {
  env: NodeJS.ProcessEnv;
  image: string;
}

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnCollect(file: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CmdResult> {
  return new Promise((done) => {
    const p = spawn(file, args, { env, stdio: ['ignore', 'pipe', 'pipe'], timeout: timeoutMs, killSignal: 'SIGKILL' });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', (e) => done({ code: null, stdout, stderr: `${stderr}${e.message}\n` }));
    p.on('close', (code) => done({ code, stdout, stderr }));
  });
}

/** The build artefacts the pod mounts from the repo (npm ci makes them). */
function checkBuilt(): void {
  const need = ['dist/cli/main.js', 'agent/addon/build/Release/fdstore.node', 'agent/launcher/fdstore-exec', 'demo/server.py'];
  const missing = need.filter((p) => !existsSync(resolve(REPO, p)));
  if (missing.length > 0) throw new Error(`e2e: ${missing.join(', ')} missing: run npm ci (or npm run build) first`);
}

/** Runs setup.sh (idempotent; minutes cold, seconds warm). Throws with its output when it fails. */
export async function setupPodman(timeoutMs: number): Promise<PodmanEnv> {
  checkBuilt();
  const r = await spawnCollect('bash', [SETUP], process.env, timeoutMs);
  if (r.code !== 0) {
    throw new Error(`e2e setup failed (exit ${r.code}): bash ${SETUP}\n${r.stderr.slice(-4000)}`);
  }
  const kv = new Map<string, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
    if (m) kv.set(m[1]!, m[2]!);
  }
  const image = kv.get('FDSTORE_E2E_IMAGE');
  if (!image || !kv.get('CONTAINERS_CONF') || !kv.get('CONTAINERS_STORAGE_CONF')) {
    throw new Error(`e2e setup printed no image/config:\n${r.stdout}\n${r.stderr.slice(-2000)}`);
  }
  const env = { ...process.env, CONTAINERS_CONF: kv.get('CONTAINERS_CONF'), CONTAINERS_STORAGE_CONF: kv.get('CONTAINERS_STORAGE_CONF') };
  return { env, image };
}

export function podman(pe: PodmanEnv, args: string[], timeoutMs = 60_000): Promise<CmdResult> {
  return new Promise((done) => {
    execFile('podman', args, { env: pe.env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      done({ code, stdout, stderr: err && code === null ? `${stderr}${err.message}` : stderr });
    });
  });
}

export async function podmanOk(pe: PodmanEnv, args: string[], timeoutMs?: number): Promise<string> {
  const r = await podman(pe, args, timeoutMs);
  if (r.code !== 0) throw new Error(`podman ${args.join(' ')} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** Pods left by a test run that died without its teardown (its pid is gone). */
export async function removeStalePods(pe: PodmanEnv): Promise<string[]> {
  const out = await podmanOk(pe, ['pod', 'ls', '--format', '{{.Name}}']);
  const stale: string[] = [];
  for (const name of out.split('\n')) {
    const m = new RegExp(`^${POD_PREFIX}(\\d+)$`).exec(name.trim());
    if (!m || isAlive(Number(m[1]))) continue;
    await podman(pe, ['pod', 'rm', '-f', '-t', '0', name.trim()]);
    stale.push(name.trim());
  }
  return stale;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function freePort(): Promise<number> {
  return new Promise((done, fail) => {
    const s = createServer();
    s.once('error', fail);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => done(port));
    });
  });
}

export interface PodSpec {
  image: string;
  agentPort: number;
  appPort: number;
}

export interface Pod {
  name: string;
  agent: string;
  app: string;
  yaml: string;
  work: string;
  runDir: string;
}

/**
 * The pod of examples/pod.yaml as podman 4.3 can run it: the agent is an ordinary
 * container (podman ignores native sidecars), so the app waits for the launcher the
 * agent installs, which a native sidecar's startup ordering gives in Kubernetes. The
 * run dir is a hostPath owned by the agent's uid (an emptyDir's owner depends on
 * which container podman mounts it for first); the app mounts only DIR/app.
 * Host network: the test reaches the app and the agent's HTTP endpoint on loopback.
 */
export function podYaml(name: string, runDir: string, s: PodSpec): string {
  const sec = (uid: number) => ({
    runAsUser: uid, runAsGroup: uid, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] },
  });
  const appCmd = `while [ ! -x /run/fdstore/fdstore-exec ]; do sleep 0.05; done; `
    + `exec /run/fdstore/fdstore-exec -- python3 -u /repo/demo/server.py ${s.appPort}`;
  const pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      shareProcessNamespace: true,
      hostNetwork: true,
      restartPolicy: 'Always',
      volumes: [
        { name: 'fdstore', hostPath: { path: runDir, type: 'Directory' } },
        { name: 'fdstore-app', hostPath: { path: join(runDir, 'app'), type: 'Directory' } },
        { name: 'repo', hostPath: { path: REPO, type: 'Directory' } },
      ],
      containers: [
        {
          name: 'fdstore',
          image: s.image,
          command: ['node', '/repo/bin/fdstore.js', 'agent', '--run-dir', '/run/fdstore', '--container', 'app',
            '--http', `127.0.0.1:${s.agentPort}`],
          securityContext: sec(AGENT_UID),
          volumeMounts: [{ name: 'fdstore', mountPath: '/run/fdstore' }, { name: 'repo', mountPath: '/repo', readOnly: true }],
        },
        {
          name: 'app',
          image: s.image,
          command: ['sh', '-c', appCmd],
          env: [{ name: 'NOTIFY_SOCKET', value: '/run/fdstore/notify' }],
          securityContext: sec(APP_UID),
          volumeMounts: [{ name: 'fdstore-app', mountPath: '/run/fdstore' }, { name: 'repo', mountPath: '/repo', readOnly: true }],
        },
      ],
    },
  };
  // JSON is YAML: no YAML writer needed, and no quoting surprises.
  return `${JSON.stringify(pod, null, 2)}\n`;
}

export async function playPod(pe: PodmanEnv, s: PodSpec): Promise<Pod> {
  const name = `${POD_PREFIX}${process.pid}`;
  const work = mkdtempSync(join(tmpdir(), 'fdstore-e2e-'));
  const runDir = join(work, 'run');
  for (const d of [runDir, join(runDir, 'app')]) {
    mkdirSync(d);
    chownSync(d, AGENT_UID, AGENT_UID);
    chmodSync(d, 0o755);
  }
  const yaml = join(work, 'pod.yaml');
  writeFileSync(yaml, podYaml(name, runDir, s));
  const pod = { name, agent: `${name}-fdstore`, app: `${name}-app`, yaml, work, runDir };
  const r = await podman(pe, ['kube', 'play', yaml], 120_000);
  if (r.code !== 0) {
    await downPod(pe, pod);
    throw new Error(`podman kube play failed (exit ${r.code}): ${r.stderr.trim()}\n${readFileSync(yaml, 'utf8')}`);
  }
  return pod;
}

/** kube down, then a forced removal if anything is left; throws if the pod still exists. */
export async function downPod(pe: PodmanEnv, pod: Pod): Promise<void> {
  await podman(pe, ['kube', 'down', pod.yaml], 120_000);
  if ((await podman(pe, ['pod', 'exists', pod.name])).code === 0) {
    await podman(pe, ['pod', 'rm', '-f', '-t', '0', pod.name], 120_000);
  }
  const left = await podman(pe, ['ps', '-a', '-q', '--filter', `name=^${pod.name}-`]);
  rmSync(pod.work, { recursive: true, force: true });
  if ((await podman(pe, ['pod', 'exists', pod.name])).code === 0 || left.stdout.trim() !== '') {
    throw new Error(`pod ${pod.name} or its containers are still there after teardown`);
  }
}
