/**
 * Live reload of the fields docs/configuration.md ("When a change takes effect") says
 * wait for a later point, with the real agent and real runs through the launcher:
 * `preserve` and `releaseAfterSec` at the next exit of the main process,
 * `timeoutStartSec` at the next start, `watchdogSignal` at the next expiry or trigger.
 * (reload.test.ts covers the other four fields.) Every wait is for a state, a counter
 * or a log line, with a deadline.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { startAgent, tempRoot, type Agent } from '../helpers/agent.js';
import { ProjectedVolume } from '../helpers/projected.js';
import { PYTHON, run, type RunResult } from '../helpers/proc.js';
import { cleanEnv, containerState, launcherOf, until, waitExited } from '../restore/harness.js';

const agents: Agent[] = [];
const children: ChildProcess[] = [];
afterEach(async () => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const a of agents.splice(0)) await a.dispose();
});

async function configAgent(initial: unknown, containers = ['app']): Promise<{ agent: Agent; vol: ProjectedVolume }> {
  const vol = new ProjectedVolume(join(tempRoot(), 'podinfo'));
  vol.write(stringify(initial));
  const agent = await startAgent({ containers, args: ['--config', vol.path, '--config-poll', '100ms'] });
  agents.push(agent);
  return { agent, vol };
}

const metric = async (agent: Agent, key: string): Promise<number> => (await agent.metrics()).get(key) ?? NaN;

/** Publish a new version (the kubelet's symlink swap) and wait until the agent applied it. */
async function publish(agent: Agent, vol: ProjectedVolume, content: unknown): Promise<void> {
  const key = 'fdstore_config_reloads_total{result="applied"}';
  const before = await metric(agent, key);
  vol.write(stringify(content));
  await until(async () => (await metric(agent, key)) === before + 1, 10_000, 'config applied');
}

/** One run of the container that stores a memfd named `state` and exits 0. */
async function storeAndExit(agent: Agent, container = 'app'): Promise<void> {
  const app = `import os
from systemd import daemon
m = os.memfd_create('state'); os.write(m, b'x')
assert daemon.notify('FDSTORE=1\\nFDNAME=state', fds=[m])
`;
  const r = await run(launcherOf(agent, container), ['--', PYTHON, '-c', app], { env: cleanEnv() });
  expect(r.code, r.stderr).toBe(0);
  await waitExited(agent, container);
}

/** One run that gets the stored fds back and exits 0 at once. */
async function restoreAndExit(agent: Agent, container = 'app'): Promise<string> {
  const r = await run(launcherOf(agent, container), ['--', 'sh', '-c', 'echo "$LISTEN_FDNAMES"'], { env: cleanEnv() });
  expect(r.code, r.stderr).toBe(0);
  await waitExited(agent, container);
  return r.stdout.trim();
}

/** A run that stays up without READY=1 until killed; resolves once the agent counts its start. */
async function longRun(agent: Agent, container: string): Promise<ChildProcess> {
  const starts = (await containerState(agent, container)).starts as number;
  const c = spawn(launcherOf(agent, container), ['--', 'sleep', '120'], { env: cleanEnv(), stdio: 'ignore' });
  children.push(c);
  await until(async () => (await containerState(agent, container)).starts === starts + 1 && (await containerState(agent, container)).state !== 'exited', 10_000, `${container} started`);
  return c;
}

const count = async (agent: Agent, container = 'app'): Promise<number> => (await containerState(agent, container)).count as number;

describe('preserve', () => {
  it('restart -> no: the store stays through the reload and goes at the next exit of the main process', async () => {
    const { agent, vol } = await configAgent({ containers: [{ name: 'app', preserve: 'restart' }] });
    await storeAndExit(agent);
    expect(await count(agent)).toBe(1);
    await publish(agent, vol, { containers: [{ name: 'app', preserve: 'no' }] });
    expect(await containerState(agent)).toMatchObject({ preserve: 'no', count: 1 });
    expect(await restoreAndExit(agent)).toBe('state'); // the next start still gets it
    await until(async () => (await count(agent)) === 0, 10_000, 'store released at that exit');
    expect(await metric(agent, 'fdstore_fds_dropped_total{app_container="app",reason="released"}')).toBe(1);
  });
});

describe('releaseAfterSec', () => {
  it('set while the container is down: the store stays; the next exit starts the timer with the new value', async () => {
    const { agent, vol } = await configAgent({ containers: [{ name: 'app' }] });
    await storeAndExit(agent); // exited with no releaseAfterSec: no timer runs
    await publish(agent, vol, { containers: [{ name: 'app', releaseAfterSec: 0.3 }] });
    expect(await count(agent)).toBe(1);
    expect(await metric(agent, 'fdstore_fds_dropped_total{app_container="app",reason="released"}')).toBe(0);
    expect(await restoreAndExit(agent)).toBe('state');
    await until(async () => (await count(agent)) === 0, 10_000, 'store released 0.3 s after that exit');
    expect(await metric(agent, 'fdstore_fds_dropped_total{app_container="app",reason="released"}')).toBe(1);
  });
});

describe('timeoutStartSec', () => {
  it('the running start keeps its deadline; the next start gets the new one', async () => {
    // `clock` takes the new value at its start after the reload: its timeout firing
    // proves that more than the new 0.3 s passed, while `app`, started before the
    // reload under 1 h, must not time out (its deadline would have come first).
    const { agent, vol } = await configAgent({ containers: [{ name: 'app', timeoutStartSec: '1h' }, { name: 'clock', timeoutStartSec: '1h' }] }, ['app', 'clock']);
    const first = await longRun(agent, 'app');
    await publish(agent, vol, { containers: [{ name: 'app', timeoutStartSec: 0.3 }, { name: 'clock', timeoutStartSec: 0.3 }] });
    await longRun(agent, 'clock');
    await until(async () => (await metric(agent, 'fdstore_start_timeouts_total{app_container="clock"}')) === 1, 10_000, 'clock start timeout');
    expect(await metric(agent, 'fdstore_start_timeouts_total{app_container="app"}')).toBe(0);
    expect(await containerState(agent, 'app')).toMatchObject({ live: true });
    first.kill('SIGKILL');
    await waitExited(agent, 'app');
    await longRun(agent, 'app');
    await until(async () => (await metric(agent, 'fdstore_start_timeouts_total{app_container="app"}')) === 1, 10_000, 'app start timeout in its next run');
    expect(await containerState(agent, 'app')).toMatchObject({ live: false, liveReason: 'start timeout: no READY=1 within timeoutStartSec' });
  });
});

/**
 * Triggers its watchdog, then asks the agent's /livez/app until it fails: the agent
 * sends the signal (when on) in the same turn as it applies the trigger, before any
 * later HTTP answer, so with the signal on this process never sees the 503.
 */
const TRIGGERING_APP = `
import os, resource, sys, time, urllib.request, urllib.error
from systemd import daemon
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
daemon.notify('MAINPID=%d\\nREADY=1' % os.getpid())
daemon.notify('WATCHDOG=trigger')
deadline = time.monotonic() + 10
while time.monotonic() < deadline:
    try:
        urllib.request.urlopen('http://127.0.0.1:%s/livez/app' % os.environ['AGENT_PORT'], timeout=5).read()
    except urllib.error.HTTPError as e:
        if e.code == 503:
            print('livez 503', flush=True)
            sys.exit(0)
    time.sleep(0.02)
sys.exit(3)
`;

async function trigger(agent: Agent): Promise<RunResult> {
  return run(PYTHON, ['-c', TRIGGERING_APP], { env: { ...cleanEnv(), NOTIFY_SOCKET: agent.notifyPath('app'), AGENT_PORT: String(agent.httpPort) } });
}

describe('watchdogSignal', () => {
  it('turned on live: the next WATCHDOG=trigger gets the main process SIGABRT (W5.5)', async () => {
    const { agent, vol } = await configAgent({ containers: [{ name: 'app', watchdogSignal: false }] });
    await publish(agent, vol, { containers: [{ name: 'app', watchdogSignal: true }] });
    const r = await trigger(agent);
    expect(r.signal, r.stdout + r.stderr).toBe('SIGABRT');
    await agent.waitForLog((l) => l.msg === 'watchdog signal sent' && l.signal === 'SIGABRT');
  });

  it('turned off live: the next WATCHDOG=trigger fails liveness and sends no signal', async () => {
    const { agent, vol } = await configAgent({ containers: [{ name: 'app', watchdogSignal: true }] });
    await publish(agent, vol, { containers: [{ name: 'app', watchdogSignal: false }] });
    const r = await trigger(agent);
    expect({ code: r.code, signal: r.signal, stdout: r.stdout }, r.stderr).toEqual({ code: 0, signal: null, stdout: 'livez 503\n' });
    expect(await metric(agent, 'fdstore_watchdog_expired_total{app_container="app"}')).toBe(1);
    expect(agent.logs.filter((l) => l.msg === 'watchdog signal sent')).toEqual([]);
  });
});
