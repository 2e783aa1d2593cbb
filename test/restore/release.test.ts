/**
 * releaseAfterSec (docs/scope.md): a container without a main process for that
 * long loses its store AND its listen: sockets, so its port refuses instead of
 * queueing handshakes nobody accepts; the next start binds them again.
 */
import { connect } from 'node:net';
import { afterEach, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { run } from '../helpers/proc.js';
import { cleanEnv, containerState, freePort, launcherOf, until, waitExited } from './harness.js';

let agent: Agent | null = null;
afterEach(async () => {
  await agent?.dispose();
  agent = null;
});

function probe(port: number): Promise<'open' | 'refused' | 'other'> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve('open');
    });
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code === 'ECONNREFUSED' ? 'refused' : 'other'));
  });
}

it('releaseAfterSec closes listen: sockets after the main process is gone, and the next start rebinds them', async () => {
  const port = await freePort();
  agent = await startAgent({
    containers: [],
    config: { containers: [{ name: 'app', releaseAfterSec: 0.5, listen: [{ name: 'http', kind: 'tcp', address: `127.0.0.1:${port}` }] }] },
  });
  expect(await probe(port)).toBe('open'); // the agent listens before any app exists
  // (no main process has exited yet, so no release timer runs: ls shows the socket)
  expect((await containerState(agent, 'app')).listen).toEqual([{ name: 'http', kind: 'tcp', address: `127.0.0.1:${port}` }]);
  const first = await run(launcherOf(agent), ['--', 'sh', '-c', 'echo "$LISTEN_FDS $LISTEN_FDNAMES"'], { env: cleanEnv() });
  expect(first.stdout.trim()).toBe('1 http');
  await waitExited(agent);
  await until(async () => (await probe(port)) === 'refused', 15_000, 'port refused after releaseAfterSec');
  // Closed by the release, not just refusing: the agent holds no listen: socket for app now.
  expect((await containerState(agent, 'app')).listen).toEqual([]);

  const second = await run(launcherOf(agent), ['--', 'sh', '-c', 'echo "$LISTEN_FDS $LISTEN_FDNAMES"'], { env: cleanEnv() });
  expect(second.stdout.trim()).toBe('1 http');
  expect(await probe(port)).toBe('open');
});

it('F3.22 preserve: no releases the store whenever the main process exits; restart keeps it', async () => {
  agent = await startAgent({ containers: [], config: { containers: [{ name: 'app', preserve: 'no' }, { name: 'keep' }] } });
  const store = `import os
from systemd import daemon
m = os.memfd_create('state'); os.write(m, b'x')
assert daemon.notify('FDSTORE=1\\nFDNAME=state', fds=[m])
`;
  for (const name of ['app', 'keep']) {
    const r = await run(launcherOf(agent, name), ['--', '/usr/bin/python3', '-c', store], { env: cleanEnv() });
    expect(r.code, r.stderr).toBe(0);
  }
  await waitExited(agent, 'app');
  await waitExited(agent, 'keep');
  const counts = async () => Object.fromEntries((await agent!.ls()).containers.map((c) => [c.name, c.count]));
  await until(async () => (await counts()).app === 0, 15_000, 'app store released');
  expect(await counts()).toEqual({ app: 0, keep: 1 });
  // Counted, not read off a log line (another pipe than ls's answer).
  const m = await agent.metrics();
  expect(m.get('fdstore_fds_dropped_total{app_container="app",reason="released"}')).toBe(1);
  expect(m.get('fdstore_fds_dropped_total{app_container="keep",reason="released"}')).toBe(0);
});
