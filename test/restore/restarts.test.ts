/**
 * Across restarts: the store survives many of them with the same objects; each
 * launcher starts a new run (state 'starting' until READY=1, main pid = the
 * launcher, restores counted); a restart under load inside a PID namespace, the
 * way a pod with shareProcessNamespace runs, drops no connection.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Load } from '../../src/demo/load.js';
import { startAgent } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { childrenOf, isRoot, NEEDS_ROOT, place, PYTHON, REPO } from '../helpers/proc.js';
import { restoreFixture, cleanEnv, Consumer, containerState, freePort, launcherOf, servedMore, until, waitExited } from './harness.js';

const fixture = restoreFixture();
const { agents } = fixture;

describe('restarts', () => {
  it('a run per launcher: starting until READY=1, main pid is the launcher, restores counted', async () => {
    const agent = await startAgent();
    agents.push(agent);
    for (let i = 1; i <= 3; i++) {
      const c = await Consumer.start(agent, fixture.consumer);
      // The launcher execs in place: its pid is the app's and the run's main pid.
      expect(c.report.pid).toBe(c.proc.pid);
      expect(await containerState(agent)).toMatchObject({ state: 'starting', mainPid: c.proc.pid, restores: i, starts: i, status: null });
      await c.cmd('notify READY=1\\nSTATUS=serving');
      await c.cmd('barrier');
      expect(await containerState(agent)).toMatchObject({ state: 'ready', status: 'serving', mainPid: c.proc.pid });
      await c.kill();
      await waitExited(agent);
    }
  });

  // 30 restarts of real processes: minutes on a loaded machine; vitest's 60 s default would be a race.
  it('the store survives 30 restarts, clean exits and SIGKILL alike, with the same objects', { timeout: 300_000 }, async () => {
    const agent = await startAgent();
    agents.push(agent);
    const baseline = agent.fdCount();
    const first = await Consumer.start(agent, fixture.consumer);
    expect(first.report.n).toBe(0);
    await first.cmd('pair conn kept-across-restarts');
    await first.cmd('memfd cfg v1');
    await first.exit();
    await waitExited(agent);
    const restarts = 30;
    for (let i = 0; i < restarts; i++) {
      const c = await Consumer.start(agent, fixture.consumer);
      expect(c.report.fds.map((f) => f.name).sort()).toEqual(['cfg', 'conn-rx', 'conn-tx']);
      expect(c.byName('conn-rx')[0]!.data).toBe('kept-across-restarts');
      expect(c.byName('cfg')[0]!.data).toBe('v1');
      if (i % 2 === 0) await c.exit();
      else await c.kill('SIGKILL');
      await waitExited(agent);
    }
    expect(await containerState(agent)).toMatchObject({ count: 3, restores: restarts + 1 });
    await expectFdCount(agent, baseline + 3);
  });

  it.skipIf(!isRoot)(`a restart under load in a PID namespace drops no connection ${NEEDS_ROOT}`, { timeout: 300_000 }, async () => {
    const port = await freePort();
    const agent = await startAgent({ pidns: true });
    agents.push(agent);
    const baseline = agent.fdCount();
    const server = join(REPO, 'demo', 'server.py');
    // demo/server.py: binds and stores its socket on first start (FDSTORE=1,
    // FDNAME=http), takes it from LISTEN_FDS later; drains on SIGTERM.
    const start = () => {
      const [f, a] = place(agent.placement(), launcherOf(agent), ['--', PYTHON, server, String(port)]);
      const nsenter = spawn(f, a, { env: cleanEnv(), stdio: 'ignore' });
      const closed = new Promise((r) => nsenter.once('close', r));
      return { nsenter, closed };
    };
    const ready = () => until(async () => (await containerState(agent)).state === 'ready', 15_000, 'server READY=1');
    let s = start();
    await ready();
    const loads = [new Load(port), new Load(port), new Load(port)];
    for (const l of loads) l.start(1);
    const restarts = 10;
    for (let i = 0; i < restarts; i++) {
      await servedMore(loads, 20);
      // nsenter forks: the server (the exec'd launcher) is its child, inside the namespace.
      const [app] = childrenOf(s.nsenter.pid!);
      expect(app).toBeGreaterThan(0);
      const st = await containerState(agent);
      expect(st.mainPid).not.toBe(app); // the agent sees the namespace's pid, not the host's
      process.kill(app!, 'SIGTERM');
      await s.closed;
      s = start();
      await ready();
    }
    await servedMore(loads, 20); // the last process serves too
    const stats = await Promise.all(loads.map((l) => l.stop()));
    const sent = stats.reduce((n, x) => n + x.sent, 0);
    const failed = stats.reduce((n, x) => n + x.refused + x.other, 0);
    console.log(`pidns: ${restarts} restarts, ${sent} requests, ${failed} failed`);
    expect(sent).toBeGreaterThan(200);
    expect(failed).toBe(0);
    process.kill(childrenOf(s.nsenter.pid!)[0]!, 'SIGTERM');
    await s.closed;
    await waitExited(agent);
    expect(await containerState(agent)).toMatchObject({ count: 1, restores: restarts + 1 });
    await expectFdCount(agent, baseline + 1);
  });
});
