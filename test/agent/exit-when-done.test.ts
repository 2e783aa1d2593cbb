/**
 * --exit-when-done (issue 10, Jobs): with real processes behind the real launcher, the
 * agent exits 0 once the main process of every container has exited and none started
 * again within the linger time; not while one still runs; a restart within the linger
 * keeps it. Without the flag it never exits on its own.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent, type LogLine } from '../helpers/agent.js';
import { PYTHON } from '../helpers/proc.js';
import { cleanEnv, launcherOf } from '../restore/harness.js';

const agents: Agent[] = [];
const apps: ChildProcess[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  for (const a of agents.splice(0).reverse()) await a.dispose();
});

/** An app behind the launcher that runs until its stdin closes (the test decides when it finishes). */
function launch(agent: Agent, container: string): { app: ChildProcess; finish: () => Promise<void> } {
  const app = spawn(launcherOf(agent, container), ['--', PYTHON, '-c', 'import sys; sys.stdin.read()'], { env: cleanEnv(), stdio: ['pipe', 'ignore', 'inherit'] });
  apps.push(app);
  const exited = new Promise<void>((resolve) => app.once('exit', () => resolve()));
  return { app, finish: () => { app.stdin!.end(); return exited; } };
}

/** Waits for the agent to have seen the run start (its main pid known). */
const started = (agent: Agent, container: string, from = 0): Promise<unknown> => agent.waitForLog((l) => l.msg === 'run started' && l.container === container && typeof l.mainPid === 'number', 10_000, from);
const exitedLog = (agent: Agent, container: string, from = 0): Promise<LogLine> => agent.waitForLog((l) => l.container === container && l.msg === 'state changed' && l.state === 'exited', 10_000, from);

/** The linger of the restart test. */
const LINGER_MS = 2_000;

/** Resolves once the wall clock has reached `t` (ms since the epoch): a deadline of the agent's, not a guess. */
async function untilTime(t: number): Promise<void> {
  while (Date.now() < t) await new Promise((r) => setTimeout(r, t - Date.now()));
}

describe('--exit-when-done', () => {
  it('exits 0 once both containers\' apps have finished, not after the first', async () => {
    const agent = await startAgent({ containers: ['a', 'b'], args: ['--exit-when-done', '0s'] });
    agents.push(agent);
    const a = launch(agent, 'a');
    const b = launch(agent, 'b');
    await Promise.all([started(agent, 'a'), started(agent, 'b')]);
    await a.finish();
    await exitedLog(agent, 'a');
    // b still runs: the agent serves on (its /healthz answers)
    const health = await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`);
    expect(health.status).toBe(200);
    await b.finish();
    expect(await agent.exited).toBe(0);
    expect(agent.logs.some((l) => l.msg === 'shutting down' && /--exit-when-done/.test(String(l.reason)))).toBe(true);
  });

  it('a restart within the linger keeps the agent (OnFailure); it exits after the last run plus the linger', async () => {
    const agent = await startAgent({ containers: ['a'], args: ['--exit-when-done', `${LINGER_MS}ms`] });
    agents.push(agent);
    const first = launch(agent, 'a');
    await started(agent, 'a');
    await first.finish();
    const mark = agent.logs.length;
    const exited = await exitedLog(agent, 'a');
    const second = launch(agent, 'a');
    await started(agent, 'a', mark);
    // The first exit's linger has run out on the agent's clock (its log line's time,
    // the same clock as ours), and its event loop has run timers since: two round
    // trips begun after the deadline (the second is served in a later turn of the
    // loop than the first, after a timers phase). A timer still armed would have
    // fired by now; the agent still serves. (test/agent/done.test.ts proves the
    // cancellation itself, with injected timers.)
    const firstDeadline = Date.parse(String(exited.time)) + LINGER_MS;
    await untilTime(firstDeadline);
    for (let i = 0; i < 2; i++) expect((await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(200);
    expect(agent.child.exitCode).toBeNull();
    const t0 = performance.now();
    await second.finish();
    expect(await agent.exited).toBe(0);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(LINGER_MS - 100);
  });

  it('without the flag the agent stays after every app has finished', async () => {
    const agent = await startAgent({ containers: ['a'] });
    agents.push(agent);
    const a = launch(agent, 'a');
    await started(agent, 'a');
    await a.finish();
    await exitedLog(agent, 'a');
    expect(agent.child.exitCode).toBeNull();
    expect((await fetch(`http://127.0.0.1:${agent.httpPort}/healthz`)).status).toBe(200);
  });
});
