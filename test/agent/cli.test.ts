/**
 * The agent command as an operator meets it: start-up errors are clear and exit
 * non-zero, the admin socket serves only the agent's uid, SIGTERM closes
 * everything and exits 0 quickly.
 */
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { FDSTORE_BIN, PYTHON, run } from '../helpers/proc.js';

let agent: Agent | null = null;
afterEach(async () => {
  await agent?.dispose();
  agent = null;
});

function cli(args: string[]) {
  return run(process.execPath, [FDSTORE_BIN, ...args], { timeoutMs: 20_000 });
}

function errorLine(stderr: string): { msg: string; error?: string } {
  const line = stderr.trim().split('\n').map((l) => JSON.parse(l) as { msg: string; error?: string }).find((l) => l.msg === 'agent failed to start');
  expect(line, stderr).toBeDefined();
  return line!;
}

describe('fdstore agent start-up errors', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'fdstore-cli-'));
    dirs.push(d);
    return d;
  };
  afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('refuses a container name that is not a DNS-1123 label', async () => {
    const r = await cli(['agent', '--run-dir', dir(), '--container', 'App_1', '--listen', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/DNS-1123/);
  });

  it('refuses socket paths that do not fit sun_path', async () => {
    const long = join(dir(), 'x'.repeat(90));
    const r = await cli(['agent', '--run-dir', long, '--container', 'app', '--listen', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/longer than 107 bytes/);
  });

  it('refuses stores that cannot fit RLIMIT_NOFILE, naming the numbers', async () => {
    const r = await cli(['agent', '--run-dir', dir(), '--container', 'a', '--container', 'b', '--fd-store-max', '15000', '--listen', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/need 30\d+ fds.*a=15000, b=15000.*RLIMIT_NOFILE allows \d+/);
  });

  it('refuses unknown fields in the config file', async () => {
    const d = dir();
    writeFileSync(join(d, 'c.yaml'), 'containers:\n  - name: app\n    fileDescriptorStoreMx: 3\n');
    const r = await cli(['agent', '--run-dir', join(d, 'run'), '--config', join(d, 'c.yaml'), '--listen', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/unknown field fileDescriptorStoreMx/);
  });

  it('names the path and the likely cause when a container directory is not writable (kubelet-made subPath)', async () => {
    const d = dir();
    chmodSync(d, 0o755);
    mkdirSync(join(d, 'app'), { mode: 0o755 }); // root-owned, as the kubelet would make it
    chownSync(d, 12345, 12345);
    const r = await run('setpriv', ['--reuid', '12345', '--regid', '12345', '--clear-groups', process.execPath, FDSTORE_BIN,
      'agent', '--run-dir', d, '--container', 'app', '--listen', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/\/app is owned by uid 0, not the agent's uid 12345: refusing it .*native sidecar/);
  });

  it('prints --help for every command', async () => {
    for (const cmd of [['--help'], ['agent', '--help'], ['ls', '--help'], ['clean', '--help']]) {
      const r = await cli(cmd);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(/Usage: fdstore/);
    }
  });
});

describe('running agent', () => {
  it('creates the container directory layout with the documented modes', async () => {
    agent = await startAgent({ containers: ['app'] });
    const d = join(agent.runDir, 'app');
    expect(statSync(d).mode & 0o777).toBe(0o755);
    expect(statSync(join(d, 'notify')).mode & 0o777).toBe(0o666);
    expect(statSync(join(d, 'restore')).mode & 0o777).toBe(0o666);
    expect(statSync(join(d, 'fdstore-exec')).mode & 0o777).toBe(0o755);
    expect(statSync(join(agent.runDir, '.fdstore')).mode & 0o777).toBe(0o700);
  });

  it('keeps an existing container directory (a subPath mount points at it)', async () => {
    const first = await startAgent({ containers: ['app'] });
    const runDir = first.runDir;
    const ino = statSync(join(runDir, 'app')).ino;
    expect(await first.stop()).toBe(0);
    agent = await startAgent({ containers: ['app'], args: ['--run-dir', runDir] });
    expect(statSync(join(runDir, 'app')).ino).toBe(ino);
    await first.dispose();
  });

  it('admin socket answers only the agent uid (SO_PEERCRED)', async () => {
    agent = await startAgent({ containers: ['app'] });
    // Root passes the 0700 directory; the uid check is what refuses it here.
    const path = join(agent.runDir, '.fdstore', 'admin.sock');
    const other = await run('setpriv', ['--reuid', '12345', '--regid', '12345', '--clear-groups', PYTHON, '-c',
      `import socket\ns=socket.socket(socket.AF_UNIX)\ntry:\n s.connect(${JSON.stringify(path)})\n s.sendall(b'{"op":"ls"}\\n')\n print(repr(s.recv(100)))\nexcept OSError as e:\n print('error', e.errno)`]);
    // Either the directory keeps uid 12345 out (EACCES) or the agent closes without answering.
    expect(other.stdout.trim()).toMatch(/^(b''|error 13)$/);
    const ls = await agent.ls();
    expect(ls.containers.map((c) => c.name)).toEqual(['app']);
  });

  it('SIGTERM closes every stored fd and exits 0 well within the grace period', async () => {
    agent = await startAgent({ containers: ['app'] });
    const baseline = agent.fdCount();
    // memfds never hang up: they stay stored after the sender exits.
    const r = await run(PYTHON, ['-c', `import os
from systemd import daemon
os.environ['NOTIFY_SOCKET']=${JSON.stringify(agent.notifyPath())}
fds=[os.memfd_create('m%d' % i) for i in range(50)]
assert daemon.notify('FDSTORE=1\\nFDNAME=state', fds=fds)
`]);
    expect(r.code, r.stderr).toBe(0);
    await agent.waitForLog(() => false, 300).catch(() => undefined);
    expect((await agent.ls()).containers[0]!.count).toBe(50);
    expect(agent.fdCount()).toBe(baseline + 50);
    const started = Date.now();
    expect(await agent.stop()).toBe(0);
    expect(Date.now() - started).toBeLessThan(10_000);
    const released = agent.logs.find((l) => l.reason === 'released');
    expect(released?.count).toBe(50);
    expect(agent.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });
});
