/**
 * Real LISTEN_FDS consumers behind the real launcher: libsystemd's
 * sd_listen_fds_with_names (consumer.c), python3-systemd's listen_fds /
 * listen_fds_with_names, and gunicorn via socket activation restarted under load.
 * Each gets the right count and names, and the very objects stored: bytes queued
 * in a stored socketpair and a memfd's contents come back.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { Load } from '../../src/demo/load.js';
import { startAgent } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { restoreFixture, cleanEnv, Consumer, containerState, freePort, HERE, launcherOf, runPyConsumer, servedMore, until, waitExited } from './harness.js';

const fixture = restoreFixture();
const { agents } = fixture;

describe('LISTEN_FDS consumers', () => {
  it('libsystemd and python3-systemd get the listener and the stored objects, by name', async () => {
    const port = await freePort();
    const agent = await startAgent({ config: { containers: [{ name: 'app', listen: [{ name: 'http', address: `127.0.0.1:${port}` }] }] } });
    agents.push(agent);
    const baseline = agent.fdCount();

    const first = await Consumer.start(agent, fixture.consumer);
    expect(first.report.n).toBe(1);
    expect(first.report.fds).toMatchObject([{ fd: 3, name: 'http', kind: 'tcp-listen' }]);
    await first.cmd('pair conn queued-bytes');
    await first.cmd('memfd cfg memfd-contents');
    await first.exit();
    await waitExited(agent);

    const second = await Consumer.start(agent, fixture.consumer);
    expect(second.report.n).toBe(4);
    expect(second.report.fds.map((f) => f.fd)).toEqual([3, 4, 5, 6]);
    expect(second.report.fds[0]!.name).toBe('http'); // activation sockets first (F3.27)
    expect(second.report.fds.map((f) => f.name).slice(1).sort()).toEqual(['cfg', 'conn-rx', 'conn-tx']); // F3.28: by name
    expect(second.byName('conn-rx')[0]).toMatchObject({ kind: 'unix', data: 'queued-bytes' });
    expect(second.byName('cfg')[0]).toMatchObject({ kind: 'memfd', data: 'memfd-contents' });
    await second.exit();
    await waitExited(agent);

    const py = await runPyConsumer(agent);
    expect(py.code).toBe(0);
    expect(py.report.fds).toEqual([3, 4, 5, 6]);
    expect(py.report.names['3']).toBe('http');
    expect(Object.values(py.report.names).sort()).toEqual(['cfg', 'conn-rx', 'conn-tx', 'http']);
    expect(py.report.data).toEqual({ 'conn-rx': 'queued-bytes', cfg: 'memfd-contents' });
    await waitExited(agent);

    const c = await containerState(agent);
    expect(c).toMatchObject({ count: 3, restores: 3, starts: 3 });
    await expectFdCount(agent, baseline + 3);
  });

  // Five gunicorn starts under load: it took 59 s of the 60 s default here while other work ran.
  it('gunicorn via socket activation restarts under load without a failed request', { timeout: 300_000 }, async () => {
    const port = await freePort();
    const agent = await startAgent({ config: { containers: [{ name: 'app', listen: [{ name: 'http', address: `127.0.0.1:${port}` }] }] } });
    agents.push(agent);
    const baseline = agent.fdCount();
    const startGunicorn = (): ChildProcess => {
      const g = spawn(launcherOf(agent), ['--', '/usr/bin/gunicorn', '--workers', '2', '--graceful-timeout', '10', '--chdir', HERE, 'wsgi_app:app'], {
        env: cleanEnv({ PYTHONDONTWRITEBYTECODE: '1' }), // no __pycache__ in the source tree
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      let err = '';
      g.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
      g.on('close', (code) => {
        if (code !== 0) console.error(`gunicorn exited ${code}: ${err}`);
      });
      return g;
    };
    let g = startGunicorn();
    // gunicorn's arbiter sends READY=1 through NOTIFY_SOCKET once it serves.
    await until(async () => (await containerState(agent)).state === 'ready', 15_000, 'gunicorn READY=1');
    const loads = [new Load(port), new Load(port), new Load(port), new Load(port)];
    for (const l of loads) l.start(1);
    const restarts = 5;
    for (let i = 0; i < restarts; i++) {
      await servedMore(loads, 20);
      const exited = new Promise((r) => g.once('close', r));
      g.kill('SIGTERM');
      expect(await exited).toBe(0);
      g = startGunicorn();
      await until(async () => (await containerState(agent)).state === 'ready', 15_000, 'gunicorn READY=1');
    }
    await servedMore(loads, 20); // the last process serves too
    const stats = await Promise.all(loads.map((l) => l.stop()));
    const total = stats.reduce((s, x) => ({ sent: s.sent + x.sent, ok: s.ok + x.ok, refused: s.refused + x.refused, other: s.other + x.other }));
    console.log(`gunicorn: ${restarts} restarts, ${total.sent} requests, ${total.refused} refused, ${total.other} other failures`);
    expect(total.sent).toBeGreaterThan(200);
    expect(total.refused + total.other).toBe(0);
    expect(total.ok).toBe(total.sent);
    const exited = new Promise((r) => g.once('close', r));
    g.kill('SIGTERM');
    await exited;
    await waitExited(agent);
    expect(await containerState(agent)).toMatchObject({ count: 0, restores: restarts + 1 });
    await expectFdCount(agent, baseline);
  });
});
