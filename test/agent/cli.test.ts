/**
 * The agent command as an operator meets it: start-up errors are clear and exit
 * non-zero, the admin socket serves only the agent's uid, SIGTERM closes
 * everything and exits 0 quickly.
 */
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { FDSTORE_BIN, isRoot, NEEDS_ROOT, PYTHON, run } from '../helpers/proc.js';
import { packageVersion } from '../../src/metrics/version.js';
import { SHUTDOWN_DEADLINE_MS } from '../../src/cli/agent.js';
import { expectFdCount } from '../helpers/observe.js';
import { RawSender } from '../helpers/raw.js';

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
    const r = await cli(['agent', '--run-dir', dir(), '--container', 'App_1', '--http', 'off']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fdstore agent: invalid container name "App_1": must be a DNS-1123 label/);
  });

  it('refuses socket paths that do not fit sun_path', async () => {
    const long = join(dir(), 'x'.repeat(90));
    const r = await cli(['agent', '--run-dir', long, '--container', 'app', '--http', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/longer than 107 bytes/);
  });

  it('refuses stores that cannot fit RLIMIT_NOFILE, naming the numbers', async () => {
    const r = await cli(['agent', '--run-dir', dir(), '--container', 'a', '--container', 'b', '--fd-store-max', '15000', '--http', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/need 30\d+ fds.*a=15000, b=15000.*RLIMIT_NOFILE allows \d+/);
  });

  it('refuses unknown fields in the config file', async () => {
    const d = dir();
    writeFileSync(join(d, 'c.yaml'), 'containers:\n  - name: app\n    fileDescriptorStoreMx: 3\n');
    const r = await cli(['agent', '--run-dir', join(d, 'run'), '--config', join(d, 'c.yaml'), '--http', 'off']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^fdstore agent: .*c\.yaml: containers\[0\]: unknown field fileDescriptorStoreMx\n$/);
  });

  it.skipIf(!isRoot)(`names the path and the likely cause when a container directory is not writable (kubelet-made subPath) ${NEEDS_ROOT}`, async () => {
    const d = dir();
    chmodSync(d, 0o755);
    mkdirSync(join(d, 'app'), { mode: 0o755 }); // root-owned, as the kubelet would make it
    chownSync(d, 12345, 12345);
    const r = await run('setpriv', ['--reuid', '12345', '--regid', '12345', '--clear-groups', process.execPath, FDSTORE_BIN,
      'agent', '--run-dir', d, '--container', 'app', '--http', 'off']);
    expect(r.code).toBe(2);
    expect(errorLine(r.stderr).error).toMatch(/\/app is owned by uid 0, not the agent's uid 12345: refusing it .*native sidecar/);
  });

  it('prints --version for fdstore and fdstore agent (the package version)', async () => {
    for (const cmd of [['--version'], ['agent', '--version'], ['-V']]) {
      const r = await cli(cmd);
      expect(r.code, cmd.join(' ')).toBe(0);
      expect(r.stdout).toBe(`fdstore ${packageVersion()}\n`);
    }
  });

  it('usage errors are one plain "fdstore agent: ..." line and exit 2, not a JSON log line', async () => {
    for (const [args, msg] of [
      [['--run-dir', dir(), '--container', 'app', '--watchdog-sec', '5 parsecs'], /^fdstore agent: --watchdog-sec: "5 parsecs" is not a time span/],
      [['--container', 'app'], /^fdstore agent: --run-dir is required$/],
      [['--run-dir', dir(), '--container', 'app', '--http', 'off', '--listen', 'off'], /^fdstore agent: --listen is the old name of --http/],
    ] as const) {
      const r = await cli(['agent', ...args]);
      expect(r.code).toBe(2);
      expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(r.stderr.trimEnd()).toMatch(msg);
    }
  });

  it('time spans on the command line: --watchdog-sec "1min 30s", --timeout-start-sec 500ms', async () => {
    // Before time spans, both were usage errors (exit 2: "a number of seconds").
    agent = await startAgent({ args: ['--watchdog-sec', '1min 30s', '--timeout-start-sec', '500ms'] });
    expect(agent.alive).toBe(true);
  });

  it('--listen still works as a deprecated alias of --http, with one warning line', async () => {
    const child = spawn(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', dir(), '--container', 'app', '--listen', '127.0.0.1:0'],
      { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8');
    const ready = new Promise<void>((res) => child.stderr.on('data', (d: string) => {
      err += d;
      if (err.includes('"agent ready"')) res();
    }));
    const exited = new Promise<number | null>((res) => child.on('close', res));
    await Promise.race([ready, exited]);
    child.kill('SIGTERM');
    expect(await exited, err).toBe(0);
    const lines = err.trim().split('\n').map((l) => JSON.parse(l) as { level: string; msg: string; address?: string });
    expect(lines.filter((l) => l.level === 'warning')).toEqual([expect.objectContaining({ msg: '--listen is deprecated: use --http (same value)' })]);
    expect(lines.find((l) => l.msg === 'http listening')?.address).toMatch(/^127\.0\.0\.1:\d+$/);
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

  it.skipIf(!isRoot)(`admin socket: the uid check itself refuses a root client of a non-root agent, and the error states the rule ${NEEDS_ROOT}`, async () => {
    // The agent runs as uid 12345; root passes the 0700 DIR/.fdstore (CAP_DAC_OVERRIDE)
    // and connects, so what refuses it is SO_PEERCRED's uid, not the directory.
    agent = await startAgent({ containers: ['app'], user: { uid: 12345, gid: 12345 } });
    const path = join(agent.runDir, '.fdstore', 'admin.sock');
    expect(statSync(path).uid).toBe(12345);
    const m = agent.mark();
    // `fdstore ls` as root refuses first, on its side: DIR/.fdstore is not its uid's
    // (item 10: an attacker-owned one must not get it to talk to a fake agent).
    const r = await cli(['ls', '--run-dir', agent.runDir]);
    expect(process.getuid!()).toBe(0);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`fdstore ls: ${join(agent.runDir, '.fdstore')} is owned by uid 12345, not this uid 0: not talking to it (run this as the agent's uid)\n`);
    // So a raw client (this test process: root with its capabilities) asks the agent itself.
    const answer = await new Promise<string>((resolve, reject) => {
      let got = '';
      const sock = connect(path);
      sock.setEncoding('utf8').on('data', (d: string) => (got += d));
      // The agent may close before our write (EPIPE) or after it (ECONNRESET): either is the refusal.
      sock.on('error', (e: NodeJS.ErrnoException) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve(got) : reject(e)));
      sock.on('close', () => resolve(got));
      sock.write('{"op":"ls"}\n');
    });
    expect(answer).toBe(''); // closed without an answer
    // The agent's own record of the refusal: it came from the uid check.
    const refused = await agent.waitForLog((l) => l.msg === 'admin connection refused', 5_000, m);
    expect(refused).toMatchObject({ uid: 0, reason: 'uid differs from the agent' });
    // The agent's uid is served.
    expect((await agent.ls()).containers.map((c) => c.name)).toEqual(['app']);
  });

  it('fdstore ls and clean take the run dir from FDSTORE_RUN_DIR, else /run/fdstore', async () => {
    agent = await startAgent({ containers: ['app'] });
    const env = { ...process.env, FDSTORE_RUN_DIR: agent.runDir };
    const ls = await run(process.execPath, [FDSTORE_BIN, 'ls', '--json'], { env });
    expect(ls.code, ls.stderr).toBe(0);
    expect((JSON.parse(ls.stdout) as { containers: Array<{ name: string }> }).containers.map((c) => c.name)).toEqual(['app']);
    const clean = await run(process.execPath, [FDSTORE_BIN, 'clean', '--container', 'app'], { env });
    expect(clean.code, clean.stderr).toBe(0);
    const noEnv = { ...process.env };
    delete noEnv.FDSTORE_RUN_DIR;
    const dflt = await run(process.execPath, [FDSTORE_BIN, 'ls'], { env: noEnv });
    expect(dflt.stderr).toContain('/run/fdstore/.fdstore/admin.sock');
  });

  it('SIGTERM closes every stored fd and exits 0 well within the grace period', async () => {
    agent = await startAgent({ containers: ['app'] });
    const warm = new RawSender(agent.notifyPath());
    expect(await warm.barrier()).toBe(true); // lazily opened fds become part of the baseline
    await warm.exit();
    const baseline = agent.fdCount();
    // memfds never hang up: they stay stored after the sender exits.
    const r = await run(PYTHON, ['-c', `import os
from systemd import daemon
os.environ['NOTIFY_SOCKET']=${JSON.stringify(agent.notifyPath())}
fds=[os.memfd_create('m%d' % i) for i in range(50)]
assert daemon.notify('FDSTORE=1\\nFDNAME=state', fds=fds)
`]);
    expect(r.code, r.stderr).toBe(0);
    // A barrier after the datagram: the agent has stored all 50 before it answers.
    const sync = new RawSender(agent.notifyPath());
    expect(await sync.barrier()).toBe(true);
    await sync.exit();
    expect((await agent.ls()).containers[0]!.count).toBe(50);
    await expectFdCount(agent, baseline + 50);
    // Exit 0 is the bound: past SHUTDOWN_DEADLINE_MS (10 s) the agent exits 1 on its own.
    expect(await agent.stop(SHUTDOWN_DEADLINE_MS * 2)).toBe(0);
    const released = agent.logs.find((l) => l.reason === 'released');
    expect(released?.count).toBe(50);
    expect(agent.logs.some((l) => l.msg === 'stopped')).toBe(true);
  });
});
