/**
 * A restarted agent shows the running app as it was: its main process (watched
 * again through a new pidfd, so its exit still ends the run), readiness, STATUS=,
 * and the restore/start counters; the listen socket is the same kernel object
 * (no re-bind while the app holds it, so no EADDRINUSE and no refused connection).
 */
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { tempRoot } from '../helpers/agent.js';
import { PYTHON, REPO } from '../helpers/proc.js';
import { Pod, startKeeper, until } from './harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('keeper: runs survive the agent', () => {
  it('main pid, readiness, STATUS= and counters carry over; the exit is still seen', { timeout: 120_000 }, async () => {
    const sock = join(tempRoot(), 'web.sock');
    const pod = new Pod({ containers: [{ name: 'app', listen: [{ name: 'web', kind: 'unix-stream', address: sock }] }] });
    const keeper = await startKeeper(pod.runDir);
    cleanups.push(async () => keeper.kill());
    await pod.startAgent();
    cleanups.push(async () => pod.killAgent());
    const app = spawn(join(pod.runDir, 'app', 'fdstore-exec'), ['--', PYTHON, join(REPO, 'test', 'keeper', 'ready_app.py')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    cleanups.push(async () => void app.kill('SIGKILL'));
    const pid = await new Promise<number>((res) => app.stdout.setEncoding('utf8').once('data', (d: string) => res(Number(d.trim()))));
    const state = async (): Promise<Record<string, unknown>> => (await pod.agent!.ls('app')).containers[0]!;
    await until(async () => (await state()).state === 'ready', 'READY=1 seen');
    const before = await state();
    expect(before).toMatchObject({ restores: 1, starts: 1 });
    for (let i = 0; i < 3; i++) {
      await pod.killAgent();
      await pod.startAgent();
      const after = await state();
      expect(after).toMatchObject({ state: 'ready', mainPid: pid, status: 'serving from the keeper test', restores: before.restores, starts: before.starts });
      // The listen socket was taken over, not bound again: a client still connects.
      await new Promise<void>((res, rej) => connect(sock).once('connect', function (this: import('node:net').Socket) { this.destroy(); res(); }).once('error', rej));
    }
    // The adopted run's main process is watched: its exit ends the run.
    app.kill('SIGKILL');
    await until(async () => (await state()).state === 'exited', 'the exit seen by the third agent');
  });
});
