/**
 * Socket activation (`listen:`, systemd's .socket units) through the real agent and
 * the real launcher: bound at start, passed first on every restore by config name,
 * not in the store and not deduplicated against it (F3.27, F3.29), blocking
 * (NonBlocking=no, reset before every start), closed on stop.
 */
import { connect, createConnection, createServer } from 'node:net';
import { lstatSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startAgent, tempRoot, type Agent } from '../helpers/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { FDSTORE_BIN } from '../helpers/proc.js';
import { restoreFixture, Consumer, freePort, waitExited } from './harness.js';

const fixture = restoreFixture();
const { agents } = fixture;

async function agentWith(listen: unknown[], extra: Record<string, unknown> = {}): Promise<Agent> {
  const a = await startAgent({ config: { containers: [{ name: 'app', listen, ...extra }] } });
  agents.push(a);
  return a;
}

/** Runs `fdstore agent` expecting it to fail at start; returns its exit code and log. */
function failingAgent(config: string): Promise<{ code: number | null; stderr: string }> {
  const root = tempRoot();
  const file = join(root, 'config.yaml');
  writeFileSync(file, config);
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', join(root, 'run'), '--container', 'app', '--http', 'off', '--config', file], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    child.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stderr });
    });
  });
}

describe('socket activation', () => {
  it('passes tcp, udp, unix stream and unix datagram sockets first, by name, before stored fds', async () => {
    const port = await freePort();
    const udpPort = await freePort();
    const root = tempRoot();
    const path = join(root, 'sub', 'ctl.sock');
    const abstract = `@fdstore-test-${process.pid}-${port}`;
    const agent = await agentWith([
      { name: 'http', kind: 'tcp', address: `127.0.0.1:${port}`, backlog: 64 },
      { name: 'dns', kind: 'udp', address: `[::1]:${udpPort}` },
      { name: 'ctl', kind: 'unix-stream', address: path },
      { name: 'log', kind: 'unix-dgram', address: abstract },
    ]);
    const baseline = agent.fdCount();
    // Bound before any app exists: a client connects into the agent's backlog.
    const early = connect(port, '127.0.0.1');
    await new Promise((r) => early.once('connect', r));
    expect((lstatSync(path).mode & 0o777).toString(8)).toBe('666');

    const first = await Consumer.start(agent, fixture.consumer);
    expect(first.report.fds.map((f) => [f.name, f.kind, f.nonblock])).toEqual([
      ['http', 'tcp-listen', false],
      ['dns', 'udp', false],
      ['ctl', 'unix-listen', false],
      ['log', 'unix-dgram', false],
    ]);
    await first.cmd('memfd state hello');
    // F3.29: the activation socket stored again is a second entry, not a duplicate.
    await first.cmd('store 3 again');
    // The app leaves O_NONBLOCK on the shared description; the next start gets it cleared.
    await first.cmd('nonblock 3');
    await first.exit();
    await waitExited(agent);

    const second = await Consumer.start(agent, fixture.consumer);
    const names = second.report.fds.map((f) => f.name);
    expect(names.slice(0, 4)).toEqual(['http', 'dns', 'ctl', 'log']);
    expect(names.slice(4).sort()).toEqual(['again', 'state']);
    expect(second.byName('state')[0]!.data).toBe('hello');
    expect(second.byName('http')[0]!.nonblock).toBe(false);
    expect(second.byName('again')[0]!.kind).toBe('tcp-listen');
    await second.exit();
    await waitExited(agent);

    const ls = await agent.ls();
    expect(ls.containers[0]!.count).toBe(2); // listeners are not in the store
    expect(ls.fds.map((f) => f.fdname).sort()).toEqual(['again', 'state']);
    await expectFdCount(agent, baseline + 2);
    early.destroy();

    // Closed on stop: the port is free again.
    expect(await agent.stop()).toBe(0);
    await new Promise<void>((resolve, reject) => {
      const s = createServer().once('error', reject).listen(port, '127.0.0.1', () => s.close(() => resolve()));
    });
  });

  it('queues connections made while no app runs and hands them to the next one', async () => {
    const port = await freePort();
    const agent = await agentWith([{ name: 'http', kind: 'tcp', address: `127.0.0.1:${port}` }]);
    const sock = createConnection(port, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    sock.write('ping');
    const py = spawn(join(agent.runDir, 'app', 'fdstore-exec'), ['--', '/usr/bin/python3', '-c', [
      'import os, socket',
      'assert os.environ["LISTEN_FDNAMES"] == "http"',
      's = socket.socket(fileno=3)',
      'c, _ = s.accept()',
      'c.sendall(c.recv(4).upper())',
    ].join('\n')], { stdio: ['ignore', 'ignore', 'inherit'] });
    const got = await new Promise<string>((resolve) => sock.once('data', (d) => resolve(d.toString())));
    expect(got).toBe('PING');
    sock.destroy();
    expect(await new Promise((r) => py.on('close', r))).toBe(0);
  });

  it('replaces a stale unix socket file, refuses to replace a regular file', async () => {
    const root = tempRoot();
    const stale = join(root, 'stale.sock');
    // A socket file nobody listens on any more (a previous agent's): bound, never unlinked.
    execFileSync('/usr/bin/python3', ['-c', `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(stale)})`]);
    expect(lstatSync(stale).isSocket()).toBe(true);
    const agent = await agentWith([{ name: 'ctl', kind: 'unix-stream', address: stale }]);
    const c = createConnection(stale);
    await new Promise((r) => c.once('connect', r));
    c.destroy();
    await agent.stop();

    const file = join(root, 'file.sock');
    writeFileSync(file, 'not a socket');
    const r = await failingAgent(`containers:\n  - name: app\n    listen:\n      - {name: ctl, kind: unix-stream, address: ${file}}\n`);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('container app: cannot bind listen socket ctl (unix-stream ' + file + '): listenSocket: EADDRINUSE');
  });

  it('fails the start with a clear error when a port is taken, and binds nothing', async () => {
    const port = await freePort();
    const busy = createServer();
    await new Promise<void>((r) => busy.listen(port, '127.0.0.1', () => r()));
    const free = await freePort();
    const r = await failingAgent(
      `containers:\n  - name: app\n    listen:\n      - {name: admin, address: "127.0.0.1:${free}"}\n      - {name: http, address: "127.0.0.1:${port}"}\n`,
    );
    busy.close();
    expect(r.code).toBe(1);
    const line = r.stderr.split('\n').find((l) => l.includes('agent failed to start'))!;
    expect(JSON.parse(line)).toMatchObject({
      msg: 'agent failed to start',
      code: 'EADDRINUSE',
      error: expect.stringContaining(`container app: cannot bind listen socket http (tcp 127.0.0.1:${port}): listenSocket: EADDRINUSE`),
    });
  });

  it('rejects a malformed address as a configuration error (exit 2) before binding', async () => {
    for (const [kind, address] of [
      ['tcp', 'localhost:80'],
      ['tcp', '::1:80'],
      ['udp', '[::1]:70000'],
      ['unix-stream', 'relative/path'],
      ['unix-dgram', '@'],
    ]) {
      const r = await failingAgent(`containers:\n  - name: app\n    listen:\n      - {name: x, kind: ${kind}, address: "${address}"}\n`);
      expect(r.code, `${kind} ${address}`).toBe(2);
      expect(r.stderr).toContain(`container app: listen[0] x: ${kind} address`);
    }
  });

  it('SO_REUSEPORT when asked: another socket can share the port', async () => {
    const port = await freePort();
    const agent = await agentWith([{ name: 'http', kind: 'tcp', address: `127.0.0.1:${port}`, reusePort: true }]);
    // Python sets SO_REUSEPORT on its own socket; binding succeeds only if ours has it too.
    const ok = spawn('/usr/bin/python3', ['-c', [
      'import socket',
      's = socket.socket()',
      's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)',
      `s.bind(("127.0.0.1", ${port}))`,
    ].join('\n')], { stdio: 'inherit' });
    expect(await new Promise((r) => ok.on('close', r))).toBe(0);
    await agent.stop();
  });

  it('stays listening across app exits and counts in the agent fds only once', async () => {
    const port = await freePort();
    const agent = await agentWith([{ name: 'http', kind: 'tcp', address: `127.0.0.1:${port}` }], { fileDescriptorStoreMax: 0 });
    const baseline = agent.fdCount();
    for (let i = 0; i < 3; i++) {
      const c = await Consumer.start(agent, fixture.consumer);
      expect(c.report.fds.map((f) => f.name)).toEqual(['http']);
      await c.kill();
      await waitExited(agent);
    }
    // FDSTORE= is not set with max 0, and the listener still passes (it is not the store).
    await expectFdCount(agent, baseline);
  });
});
