/**
 * Issue 7 item 15 (first half): a restarted agent finds its `listen:` socket
 * still held by the running app (EADDRINUSE: SO_REUSEADDR does not allow a bind
 * while another socket LISTENs). It starts anyway, reports the socket as held in
 * `fdstore ls`, the app keeps accepting, and the next launch gets a freshly bound one.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent, type LsJson } from '../helpers/agent.js';
import { PYTHON } from '../helpers/proc.js';
import { cleanEnv, freePort, launcherOf } from '../restore/harness.js';

/** Accepts on the passed socket (fd 3) and answers each connection with its pid. */
const APP = `import os, socket
s = socket.socket(fileno=3)
assert os.environ['LISTEN_FDNAMES'] == 'web', os.environ.get('LISTEN_FDNAMES')
print('up', flush=True)
while True:
    c, _ = s.accept()
    c.sendall(str(os.getpid()).encode())
    c.close()
`;

const agents: Agent[] = [];
const apps: ChildProcess[] = [];
afterEach(async () => {
  for (const a of apps.splice(0)) if (a.exitCode === null && a.signalCode === null) a.kill('SIGKILL');
  for (const a of agents.splice(0).reverse()) await a.dispose();
});

/** The pid of whoever accepts on port. */
function ask(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1');
    let buf = '';
    s.setEncoding('utf8').on('data', (d: string) => (buf += d));
    s.on('end', () => resolve(buf));
    s.on('error', reject);
  });
}

/** Launches the app through the launcher; resolves once it runs (its restore, and so any rebind, is done). */
async function launch(agent: Agent): Promise<ChildProcess> {
  const app = spawn(launcherOf(agent), ['--', PYTHON, '-c', APP], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'inherit'] });
  apps.push(app);
  await new Promise<void>((resolve, reject) => {
    app.stdout!.setEncoding('utf8').once('data', () => resolve());
    app.once('exit', (code) => reject(new Error(`app exited ${code} before it ran`)));
  });
  return app;
}

async function lsOf(agent: Agent, runDir: string): Promise<LsJson> {
  const r = await agent.cli(['ls', '--run-dir', runDir, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as LsJson;
}

describe('item 15: agent restart while the app holds a listen: socket', () => {
  it('starts anyway, reports the socket as held, and binds it again for the next launch', async () => {
    const port = await freePort();
    const config = { containers: [{ name: 'app', listen: [{ name: 'web', kind: 'tcp', address: `127.0.0.1:${port}` }] }] };
    const first = await startAgent({ config });
    agents.push(first);
    const app = await launch(first);
    expect(await ask(port)).toBe(String(app.pid));

    process.kill(first.pid, 'SIGKILL');
    await first.exited;

    // Before the fix this start failed with EADDRINUSE (a crash loop under Kubernetes).
    const second = await startAgent({ config, args: ['--run-dir', first.runDir] });
    agents.push(second);
    expect(second.logs.some((l) => l.msg.startsWith('listen socket held by the running app') && l.name === 'web')).toBe(true);
    expect((await lsOf(second, first.runDir)).containers[0]!.listenHeld).toEqual(['web']);
    expect(await ask(port)).toBe(String(app.pid));

    app.kill('SIGTERM');
    await new Promise((r) => app.once('exit', r));
    const next = await launch(first);
    // The launcher's restore made the agent bind the port again and pass it.
    expect(await ask(port)).toBe(String(next.pid));
    expect((await lsOf(second, first.runDir)).containers[0]!.listenHeld).toEqual([]);
  });
});

