/**
 * End to end in a real pod (`podman kube play`, runc): the agent as uid 64919 and
 * demo/server.py behind the launcher as uid 10001, shareProcessNamespace, the app
 * mounting only its own directory. The app is killed (SIGTERM, then SIGKILL) under
 * load from the host; the pod's restartPolicy: Always restarts it.
 *
 * Proves: the agent sees the app's pid across containers; the restore peer check
 * accepts a real container's cgroup (not the agent's); the listening socket
 * survives every restart (same inode, one fd); no connection is ever refused and
 * a SIGTERM restart fails no request; restores are counted in `fdstore ls` and
 * /metrics; /readyz/app is 200 again after each restart.
 *
 * Needs root and podman, runc, debootstrap, catatonit (Debian); setup.sh builds the
 * images once into /var/cache/fdstore-e2e (FDSTORE_E2E_CACHE). Skipped only without
 * root (saying so); otherwise a failed setup fails the tests with setup.sh's output.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ContainerStatus, FdRow } from '../../src/admin/protocol.js';
import { isRoot, NEEDS_ROOT } from '../helpers/proc.js';
import { failedCount, getPid, getStatus, Load, sleep, type LoadStats } from './load.js';
import {
  AGENT_UID, APP_UID, downPod, freePort, playPod, podman, podmanOk, removeStalePods, setupPodman,
  type Pod, type PodmanEnv,
} from './podman.js';

const SETUP_MS = 20 * 60_000;
const TERM_RESTARTS = 5;
const KILL_RESTARTS = 2;

interface Env {
  pe: PodmanEnv;
  pod: Pod;
  agentPort: number;
  appPort: number;
}

let env: Env | null = null;
let setupError: unknown = null;
let pe: PodmanEnv | null = null;
let pod: Pod | null = null;
let load: Load | null = null;
/** The one stored listening socket, as first seen. */
let httpInode = 0;
let restarts = 0;

function need(): Env {
  if (env && setupError === null) return env;
  throw new Error(`e2e setup failed, so this test cannot run: ${setupError instanceof Error ? setupError.message : String(setupError)}`);
}

beforeAll(async () => {
  if (!isRoot) return; // the tests below are skipped, saying why
  try {
    pe = await setupPodman(SETUP_MS - 60_000);
    await removeStalePods(pe);
    const agentPort = await freePort();
    let appPort = await freePort();
    while (appPort === agentPort) appPort = await freePort();
    pod = await playPod(pe, { image: pe.image, agentPort, appPort });
    env = { pe, pod, agentPort, appPort };
    await waitFor(async () => (await getStatus(agentPort, '/readyz/app', 1000)).status === 200, 60_000, 'the app to be ready');
  } catch (e) {
    setupError = e;
  }
}, SETUP_MS);

afterAll(async () => {
  await load?.stop();
  if (pe && pod) await downPod(pe, pod);
}, 180_000);

/** Requests each main process answers before the next restart. */
const SERVED_BETWEEN_RESTARTS = 20;

async function waitFor<T>(probe: () => Promise<T | null | false>, ms: number, what: string): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== null && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}\n${await diagnostics()}`);
    await sleep(100);
  }
}

async function logs(container: string): Promise<string> {
  if (!env) return '';
  const r = await podman(env.pe, ['logs', container]);
  return r.stdout + r.stderr;
}

async function diagnostics(): Promise<string> {
  if (!env) return '';
  const ps = await podman(env.pe, ['ps', '-a', '--filter', `pod=${env.pod.name}`, '--format', '{{.Names}} {{.Status}}']);
  return `--- containers\n${ps.stdout}--- agent log (tail)\n${(await logs(env.pod.agent)).slice(-3000)}`
    + `--- app log (tail)\n${(await logs(env.pod.app)).slice(-1500)}`;
}

interface Ls {
  app: ContainerStatus;
  fds: FdRow[];
}

/** `fdstore ls --json` inside the agent container, as the agent's uid (the admin socket's rule). */
async function ls(): Promise<Ls> {
  const e = need();
  const out = await podmanOk(e.pe, ['exec', e.pod.agent, 'node', '/repo/bin/fdstore.js', 'ls', '--run-dir', '/run/fdstore', '--json']);
  const r = JSON.parse(out) as { containers: ContainerStatus[]; fds: FdRow[] };
  const app = r.containers.find((c) => c.name === 'app');
  if (!app) throw new Error(`no container app in fdstore ls: ${out}`);
  return { app, fds: r.fds };
}

async function hostPid(container: string): Promise<number> {
  const out = await podmanOk(need().pe, ['inspect', container, '--format', '{{.State.Pid}}']);
  const pid = Number(out.trim());
  if (!(pid > 0)) throw new Error(`${container} has no running process (inspect: ${out.trim()})`);
  return pid;
}

function procStatus(pid: number, field: string): string[] {
  const m = new RegExp(`^${field}:\\s+(.*)$`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? m[1]!.trim().split(/\s+/) : [];
}

/** The pid as the pod (and so the agent) sees it: the last NSpid entry. */
function podPid(host: number): number {
  return Number(procStatus(host, 'NSpid').at(-1));
}

function httpFd(l: Ls): FdRow {
  const fds = l.fds.filter((f) => f.container === 'app');
  expect(fds.map((f) => [f.fdname, f.type, f.address])).toEqual([['http', 'tcp_listen', `127.0.0.1:${need().appPort}`]]);
  return fds[0]!;
}

/** Kill the app's main process from the host (as a crash or the kubelet would), wait for the restarted one. */
async function restartApp(signal: NodeJS.Signals): Promise<Ls> {
  const e = need();
  const before = await ls();
  const pid = await hostPid(e.pod.app);
  expect(podPid(pid), 'the container main process is the pid the agent watches').toBe(before.app.mainPid);
  process.kill(pid, signal);
  const after = await waitFor(async () => {
    const l = await ls();
    return l.app.starts === before.app.starts + 1 && l.app.state === 'ready' ? l : null;
  }, 30_000, `the app to restart after ${signal}`);
  restarts++;
  expect(after.app.mainPid).not.toBeNull();
  expect(after.app.mainPid).not.toBe(before.app.mainPid);
  expect(after.app.restores, 'one more restore').toBe(before.app.restores + 1);
  expect(httpFd(after).inode, 'the same listening socket').toBe(httpInode);
  expect(podPid(await hostPid(e.pod.app))).toBe(after.app.mainPid);
  const ready = await waitFor(async () => {
    const r = await getStatus(e.agentPort, '/readyz/app');
    return r.status === 200 ? r : null;
  }, 10_000, '/readyz/app 200');
  expect(ready.body.trim()).toBe('ready');
  expect(await getPid(e.appPort), 'the new process serves').toBe(after.app.mainPid);
  return after;
}

/** Restarts under load; returns the load's numbers and the pids that served after each restart. */
async function restartsUnderLoad(signal: NodeJS.Signals, n: number): Promise<{ stats: LoadStats; mainPids: number[] }> {
  const e = need();
  const l = new Load(e.appPort);
  load = l;
  l.start();
  const mainPids: number[] = [];
  try {
    // Answers, not sleeps: under load a fixed pause may serve nothing.
    await waitFor(async () => l.stats.ok >= SERVED_BETWEEN_RESTARTS, 30_000, 'the load to be served');
    for (let i = 0; i < n; i++) {
      const after = await restartApp(signal);
      const pid = after.app.mainPid!;
      mainPids.push(pid);
      // The new process serves the load for a while before the next restart.
      await waitFor(async () => (l.stats.pids.get(pid) ?? 0) >= SERVED_BETWEEN_RESTARTS, 30_000, `requests served by main pid ${pid}`);
    }
  } finally {
    await l.stop();
    load = null;
  }
  return { stats: l.stats, mainPids };
}

describe.skipIf(!isRoot)(`fdstore in a real pod (podman kube play) ${NEEDS_ROOT}`, () => {
  it('the agent sees the app: main pid across containers, the stored socket, readiness', { timeout: 60_000 }, async () => {
    const e = need();
    const l = await ls();
    expect(l.app.mainPid).not.toBeNull();
    expect(l.app).toMatchObject({ state: 'ready', starts: 1, restores: 1, count: 1 });
    httpInode = httpFd(l).inode;
    expect(httpInode).toBeGreaterThan(0);
    expect(await getPid(e.appPort), 'the pid the app reports is the main pid the agent watches').toBe(l.app.mainPid);

    const agentPid = await hostPid(e.pod.agent);
    const appPid = await hostPid(e.pod.app);
    expect(podPid(appPid)).toBe(l.app.mainPid);
    expect(procStatus(agentPid, 'Uid')).toEqual(Array(4).fill(String(AGENT_UID)));
    expect(procStatus(appPid, 'Uid')).toEqual(Array(4).fill(String(APP_UID)));
    expect(procStatus(agentPid, 'CapEff')).toEqual(['0000000000000000']);
    // Real containers: the app is in its own cgroup and mounts only DIR/app, so the
    // restore peer check (docs/security.md) told it apart by its mounts, not by socket only.
    const cg = (pid: number) => readFileSync(`/proc/${pid}/cgroup`, 'utf8');
    expect(cg(appPid)).not.toBe(cg(agentPid));
    expect(await logs(e.pod.agent)).not.toContain('restore peers see the whole run dir');
    expect(await logs(e.pod.agent)).not.toContain('restore refused');

    // The app container sees only its own directory of the run dir.
    const seen = await podmanOk(e.pe, ['exec', e.pod.app, 'sh', '-c', 'ls -A /run/fdstore']);
    expect(seen.split(/\s+/).filter(Boolean).sort()).toEqual(['fdstore-exec', 'notify', 'restore']);

    expect((await getStatus(e.agentPort, '/healthz')).status).toBe(200);
    expect((await getStatus(e.agentPort, '/livez/app')).status).toBe(200);
  });

  it(`${TERM_RESTARTS} SIGTERM restarts under load: no refused or failed request, the same socket, restores counted`, { timeout: 180_000 }, async () => {
    need();
    expect(httpInode, 'the first test read the stored socket').toBeGreaterThan(0);
    const { stats, mainPids } = await restartsUnderLoad('SIGTERM', TERM_RESTARTS);
    const summary = JSON.stringify({ ...stats, pids: Object.fromEntries(stats.pids) });
    console.log(`SIGTERM x${TERM_RESTARTS} under load: ${summary}`);
    expect(stats.refused, summary).toBe(0);
    expect(failedCount(stats), summary).toBe(0);
    expect(stats.ok, summary).toBeGreaterThan(50);
    for (const pid of mainPids) expect(stats.pids.get(pid) ?? 0, `requests served by main pid ${pid}: ${summary}`).toBeGreaterThan(0);
  });

  it(`${KILL_RESTARTS} SIGKILL crashes under load: no refused connection, the same socket`, { timeout: 180_000 }, async () => {
    need();
    expect(httpInode, 'the first test read the stored socket').toBeGreaterThan(0);
    const { stats, mainPids } = await restartsUnderLoad('SIGKILL', KILL_RESTARTS);
    const summary = JSON.stringify({ ...stats, pids: Object.fromEntries(stats.pids) });
    console.log(`SIGKILL x${KILL_RESTARTS} under load: ${summary}`);
    // A crash can fail only requests the killed process had accepted: at most one per client.
    expect(stats.refused, summary).toBe(0);
    expect(failedCount(stats), summary).toBeLessThanOrEqual(4 * KILL_RESTARTS);
    for (const pid of mainPids) expect(stats.pids.get(pid) ?? 0, `requests served by main pid ${pid}: ${summary}`).toBeGreaterThan(0);
  });

  it('metrics and logs agree: every restart restored the one socket, nothing refused or dropped', { timeout: 60_000 }, async () => {
    const e = need();
    expect(restarts, 'the restart tests ran').toBe(TERM_RESTARTS + KILL_RESTARTS);
    const l = await ls();
    expect(l.app).toMatchObject({ starts: 1 + restarts, restores: 1 + restarts, count: 1, state: 'ready' });
    expect(httpFd(l).inode).toBe(httpInode);

    const metrics = (await getStatus(e.agentPort, '/metrics')).body;
    const metric = (name: string) => Number(new RegExp(`^${name}\\{app_container="app"\\} (\\S+)$`, 'm').exec(metrics)?.[1]);
    expect(metric('fdstore_restores_total')).toBe(1 + restarts);
    expect(metric('fdstore_restored_fds_total'), 'one fd per restart, none at the first start').toBe(restarts);
    expect(metric('fdstore_main_process_starts_total')).toBe(1 + restarts);
    expect(metric('fdstore_fds_stored_total')).toBe(1);
    expect(metric('fdstore_container_ready')).toBe(1);
    expect(metrics).not.toMatch(/^fdstore_fds_dropped_total\{[^}]*app_container="app"[^}]*\} [1-9]/m);

    type Line = { level: string; msg: string; state?: string; fds?: number };
    const agentLog = (await logs(e.pod.agent)).split('\n').filter((s) => s.startsWith('{')).map((s) => JSON.parse(s) as Line);
    expect(agentLog.filter((x) => x.level === 'warning' || x.level === 'error')).toEqual([]);
    expect(agentLog.filter((x) => x.msg === 'restored fds').map((x) => x.fds)).toEqual([0, ...Array(restarts).fill(1)]);
    // Readiness went away with every exit (STOPPING=1 first on SIGTERM) and came back.
    const states = (st: string) => agentLog.filter((x) => x.msg === 'state changed' && x.state === st).length;
    expect(states('stopping')).toBe(TERM_RESTARTS);
    expect(states('exited')).toBe(restarts);
    expect(states('ready')).toBe(1 + restarts);

    const appLog = await logs(e.pod.app);
    expect(appLog.match(/socket bound/g) ?? [], appLog).toHaveLength(1);
    expect(appLog.match(/socket fd store/g) ?? [], appLog).toHaveLength(restarts);
  });
});
