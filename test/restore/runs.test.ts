/**
 * Which restore starts a run (issue 7 items 5 and 9): a launcher connecting while
 * the current main process lives is refused and changes nothing; the old run's
 * queued datagrams are applied to the old run before a new one starts; in pid-0
 * mode (no shared PID namespace) the launcher's pidfd is the watch and is closed
 * when the run ends, so many starts leave the agent's fd count flat.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { isRoot, LineProcess, NEEDS_ROOT, PYTHON, REPO, run } from '../helpers/proc.js';
import { cleanEnv, Consumer, containerState, launcherOf, restoreFixture, until, waitExited } from './harness.js';

const fixture = restoreFixture();
const { agents } = fixture;
/** Starts in the pid-0 leak test: a leak of one pidfd each shows as STARTS extra fds. */
const STARTS = 10;
/** Each start spawns a launcher and waits for its exit: allow 15 s apiece under load. */
const STARTS_TIMEOUT_MS = STARTS * 15_000;
const RESTORE_CLIENT = join(REPO, 'test', 'restore', 'restore_client.py');

/** The state letter of /proc/PID/stat ('T' once SIGSTOP took effect). */
function procState(pid: number): string {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
}

describe('a restore while the main process lives', () => {
  it('is refused with a clear launcher message: the run, its watch and its store stay (preserve: no)', async () => {
    const agent = await startAgent({ containers: [], config: { containers: [{ name: 'app', preserve: 'no' }] } });
    agents.push(agent);
    const app = await Consumer.start(agent, fixture.consumer);
    await app.cmd('memfd state v1');
    await app.cmd('notify READY=1');
    await app.cmd('barrier');
    expect(await containerState(agent)).toMatchObject({ state: 'ready', mainPid: app.proc.pid, count: 1, starts: 1 });

    // What `kubectl exec app -- /run/fdstore/fdstore-exec -- env` does while debugging.
    const intruder = await run(launcherOf(agent), ['--', 'true'], { env: cleanEnv() });
    expect(intruder.code).toBe(111);
    expect(intruder.stderr).toContain(`aborted the restore: the main process ${app.proc.pid} of the current run is alive`);
    expect(await containerState(agent)).toMatchObject({ state: 'ready', mainPid: app.proc.pid, count: 1, starts: 1, restores: 1 });

    // Its exit is still watched: preserve: no releases the store now, not at the intruder's exit.
    await app.kill();
    await waitExited(agent);
    expect(await containerState(agent)).toMatchObject({ state: 'exited', count: 0 });
    const next = await Consumer.start(agent, fixture.consumer);
    expect(await containerState(agent)).toMatchObject({ state: 'starting', mainPid: next.proc.pid, starts: 2 });
    await next.kill();
  });

  it('D1.5: datagrams the old run queued are applied to it before the next run starts', async () => {
    const agent = await startAgent();
    agents.push(agent);
    const app = await Consumer.start(agent, fixture.consumer);
    await app.cmd('notify READY=1');
    await app.cmd('barrier');
    // Stopped, the agent reads nothing: the next connection, STOPPING=1 and the
    // exit queue up in the kernel in that order, and it wakes up to all three.
    process.kill(agent.pid, 'SIGSTOP');
    let client: LineProcess | null = null;
    try {
      await until(() => procState(agent.pid) === 'T', 10_000, 'agent stopped');
      client = new LineProcess(PYTHON, [RESTORE_CLIENT, join(agent.runDir, 'app', 'restore')]);
      expect(await client.nextLine()).toBe('connected');
      await app.cmd('notify STOPPING=1');
      await app.kill();
    } finally {
      process.kill(agent.pid, 'SIGCONT');
    }
    // The client reads the whole restore: by then the agent decided about its run.
    const report = JSON.parse(await client.nextLine()) as { ok: boolean; fds: number };
    expect(report).toEqual({ ok: true, fds: 0 });
    // The old main is gone, so this connection is the new run; STOPPING=1 ended the old one.
    expect(await containerState(agent)).toMatchObject({ state: 'starting', mainPid: client.pid, starts: 2 });
    expect(agent.logs.some((l) => l.msg === 'state changed' && l.state === 'stopping')).toBe(true);
    await client.close();
  });
});

describe('pid-0 mode (the agent in its own PID namespace: peers show pid 0)', () => {
  it.skipIf(!isRoot)(`each start watches the launcher by its pidfd and closes it when the run ends: fd count flat ${NEEDS_ROOT}`, async () => {
    const agent = await startAgent({ pidns: true });
    agents.push(agent);
    const baseline = agent.fdCount();
    for (let i = 1; i <= STARTS; i++) {
      // Not placed in the agent's namespace: the agent sees pid 0.
      const r = await run(launcherOf(agent), ['--', 'true'], { env: cleanEnv() });
      expect(r.code, r.stderr).toBe(0);
      await waitExited(agent);
      expect(await containerState(agent)).toMatchObject({ state: 'exited', mainPid: null, starts: i });
    }
    await expectFdCount(agent, baseline);
    // Ten launcher processes and their state checks: slow on a loaded 2-core machine, not stuck.
  }, STARTS_TIMEOUT_MS);

  it.skipIf(!isRoot)(`a second launcher while the first lives is refused there too ${NEEDS_ROOT}`, async () => {
    const agent = await startAgent({ pidns: true });
    agents.push(agent);
    const app = spawn(launcherOf(agent), ['--', 'sleep', '600'], { env: cleanEnv(), stdio: 'ignore' });
    const gone = new Promise((r) => app.once('close', r));
    try {
      // The run started once ls counts it; sleep execs after the restore.
      await until(async () => (await containerState(agent)).starts === 1, 10_000, 'first start');
      const second = await run(launcherOf(agent), ['--', 'true'], { env: cleanEnv() });
      expect(second.code).toBe(111);
      expect(second.stderr).toContain('the main process of the current run is alive');
      expect(await containerState(agent)).toMatchObject({ starts: 1 });
    } finally {
      app.kill('SIGKILL');
      await gone;
    }
    await waitExited(agent);
  });
});

/** The libsystemd consumer started without the launcher: it talks to NOTIFY_SOCKET itself. */
async function direct(agent: Agent, consumer: string, cgroupDir?: string): Promise<LineProcess> {
  const env = cleanEnv({ NOTIFY_SOCKET: agent.notifyPath() });
  const p = cgroupDir === undefined
    ? new LineProcess(consumer, [], { env })
    : new LineProcess('sh', ['-c', 'echo $$ > "$1/cgroup.procs" && exec "$2"', 'sh', cgroupDir, consumer], { env });
  JSON.parse(await p.nextLine()); // its report: no fds
  return p;
}

async function send(p: LineProcess, state: string): Promise<void> {
  expect(await p.request(`notify ${state}`)).toMatch(/^ok/);
  expect(await p.request('barrier')).toMatch(/^ok/);
}

/** Two "starts" of one container: cgroups named by 64-hex container ids, as runtimes name them. */
function containerCgroups(): { dirs: string[]; remove(): void } {
  const base = join('/sys/fs/cgroup', existsSync('/sys/fs/cgroup/pids') ? 'pids' : '', `fdstore-t-${process.pid}-${Date.now()}`);
  const dirs = ['a', 'b'].map((c) => join(base, `cri-containerd-${c.repeat(64)}.scope`));
  for (const d of dirs) mkdirSync(d, { recursive: true });
  return {
    dirs,
    remove: () => {
      for (const d of dirs) rmdirSync(d);
      rmdirSync(base);
    },
  };
}

describe('runs without the launcher (item 8)', () => {
  it('A2.9: after the MAINPID= process exited, a datagram from a new process starts a new run', async () => {
    const agent = await startAgent();
    agents.push(agent);
    const first = await direct(agent, fixture.consumer);
    await send(first, `READY=1\\nMAINPID=${first.pid}`);
    await send(first, 'STOPPING=1');
    expect(await containerState(agent)).toMatchObject({ state: 'stopping', mainPid: first.pid });
    first.child.kill('SIGKILL');
    await first.exited;
    await waitExited(agent);
    const second = await direct(agent, fixture.consumer);
    await send(second, 'READY=1');
    expect(await containerState(agent)).toMatchObject({ state: 'ready', mainPid: null, starts: 1 });
    second.child.kill('SIGKILL');
    await second.exited;
  });

  it.skipIf(!isRoot)(`a new container id (cgroup) starts a new run: STOPPING=1 and a watchdog failure of the old start are gone ${NEEDS_ROOT}`, async () => {
    const cg = containerCgroups();
    const agent = await startAgent();
    agents.push(agent);
    try {
      const first = await direct(agent, fixture.consumer, cg.dirs[0]);
      await send(first, 'READY=1');
      await send(first, 'WATCHDOG=trigger');
      await send(first, 'STOPPING=1');
      expect(await containerState(agent)).toMatchObject({ state: 'stopping', live: false, starts: 0 });
      first.child.kill('SIGKILL');
      await first.exited;
      const second = await direct(agent, fixture.consumer, cg.dirs[1]);
      await send(second, 'READY=1');
      expect(await containerState(agent)).toMatchObject({ state: 'ready', live: true, starts: 1 });
      // Another process of the same start changes nothing.
      const helper = await direct(agent, fixture.consumer, cg.dirs[1]);
      await send(helper, 'STATUS=helper');
      expect(await containerState(agent)).toMatchObject({ state: 'ready', status: 'helper', starts: 1 });
      for (const p of [second, helper]) {
        p.child.kill('SIGKILL');
        await p.exited;
      }
    } finally {
      cg.remove();
    }
  });

  it('A2.2: RELOADING=1 before READY=1 does not report ready', async () => {
    const agent = await startAgent();
    agents.push(agent);
    const app = await Consumer.start(agent, fixture.consumer);
    await app.cmd('notify RELOADING=1');
    await app.cmd('barrier');
    expect(await containerState(agent)).toMatchObject({ state: 'starting' });
    await app.cmd('notify READY=1');
    await app.cmd('notify RELOADING=1');
    await app.cmd('barrier');
    expect(await containerState(agent)).toMatchObject({ state: 'reloading' });
    await app.kill();
  });
});

describe('an agent restart (item 15)', () => {
  it('reports the container as unknown since agent restart, ready and live, until the app says more', async () => {
    const first = await startAgent();
    agents.push(first);
    const app = await Consumer.start(first, fixture.consumer);
    await app.cmd('notify READY=1');
    await app.cmd('barrier');
    expect(await first.stop()).toBe(0);
    // The app keeps serving; a new agent on the same run dir finds its sockets.
    const second = await startAgent({ args: ['--run-dir', first.runDir] });
    agents.push(second);
    const ls = await second.cli(['ls', '--run-dir', first.runDir, '--json']);
    const state = (JSON.parse(ls.stdout) as { containers: Array<Record<string, unknown>> }).containers[0];
    expect(state).toMatchObject({ state: 'unknown', live: true, ready: true, readyReason: 'unknown since agent restart' });
    await app.kill();
  });
});
