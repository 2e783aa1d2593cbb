// fdstore-exec without an agent: invocation, exec errors, waiting for an absent agent.
import { chmodSync, copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { packageVersion } from '../../src/metrics/version.js';
import { sleepingBetweenAttempts } from '../helpers/proc.js';
import { buildLauncher, checkApp, env, expectedOpen, launcher, report, run, startPeer, tempDir } from './harness.js';

beforeAll(buildLauncher);

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups) c();
  cleanups = [];
});
function dir(): string {
  const t = tempDir();
  cleanups.push(t.cleanup);
  return t.dir;
}

function expectOneLine(stderr: string, pattern: RegExp): void {
  expect(stderr.split('\n').filter(Boolean)).toHaveLength(1);
  expect(stderr).toMatch(/^fdstore-exec: /);
  expect(stderr).toMatch(pattern);
}

describe('usage', () => {
  it('--help prints usage on stdout and exits 0', async () => {
    const r = await run(['--help']);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^usage: fdstore-exec \[--dir DIR\] \[--wait-ms N\] -- COMMAND/);
    expect(r.stdout).toContain('FDSTORE_EXEC_TIMEOUT_MS');
    expect(r.stderr).toBe('');
  });

  it('--version prints the package version on stdout and exits 0', async () => {
    const r = await run(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`fdstore-exec ${packageVersion()}\n`);
    expect(r.stderr).toBe('');
  });

  it.each([
    [[], /no command given/],
    [['--'], /no command given/],
    [['--dir', '/tmp'], /no command given/],
    [['--frobnicate', '--', 'true'], /unknown option --frobnicate/],
    [['-x', 'true'], /unknown option -x/],
    [['--wait-ms', 'soon', '--', 'true'], /--wait-ms needs a number/],
    [['--wait-ms', '-5', '--', 'true'], /--wait-ms needs a number/],
    [['--wait-ms', '99999999999999999999', '--', 'true'], /--wait-ms needs a number/],
    [['--wait-ms'], /--wait-ms needs a value/],
    [['--dir', '', '--', 'true'], /--dir needs a directory/],
  ])('%j exits 100', async (args, pattern) => {
    const r = await run(args);
    expect(r.code).toBe(100);
    expectOneLine(r.stderr, pattern);
  });

  it('rejects a bad FDSTORE_EXEC_TIMEOUT_MS with 100', async () => {
    for (const v of ['0', 'x', '']) {
      const r = await run(['--wait-ms', '0', '--dir', dir(), '--', 'true'], {
        env: env({ FDSTORE_EXEC_TIMEOUT_MS: v }),
      });
      expect(r.code).toBe(100);
      expectOneLine(r.stderr, /FDSTORE_EXEC_TIMEOUT_MS/);
    }
  });
});

describe('exec', () => {
  it('exits 127 when the command is not found', async () => {
    const r = await run(['--wait-ms', '0', '--dir', dir(), '--', 'fdstore-no-such-command']);
    expect(r.code).toBe(127);
    expect(r.stderr).toMatch(/^fdstore-exec: fdstore-no-such-command: No such file or directory$/m);
  });

  it('exits 126 when the command is not executable', async () => {
    const d = dir();
    const file = path.join(d, 'not-executable');
    writeFileSync(file, '#!/bin/sh\nexit 0\n');
    chmodSync(file, 0o644);
    const r = await run(['--wait-ms', '0', '--dir', d, '--', file]);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/^fdstore-exec: .*not-executable: Permission denied$/m);
  });

  it('passes arguments through and takes the command without --', async () => {
    const r = await run(['--wait-ms=0', `--dir=${dir()}`, 'sh', '-c', 'echo "$0|$1"', 'a b', '--dir']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('a b|--dir\n');
  });
});

describe('no agent', () => {
  it('waits --wait-ms, says so, and runs the command without LISTEN_* variables', async () => {
    const d = dir();
    const r = await run(['--wait-ms', '200', '--dir', d, '--', 'python3', checkApp], {
      env: env({
        LISTEN_FDS: '5', LISTEN_PID: '1', LISTEN_FDNAMES: 'a:b:c:d:e', LISTEN_PIDFDID: '7',
        WATCHDOG_USEC: '1000', WATCHDOG_PID: '1', FDSTORE: '9',
      }),
    });
    expect(r.code).toBe(0);
    expect(r.stderr).toBe(
      `fdstore-exec: no agent at ${d}/restore after 200 ms, starting without stored fds\n`,
    );
    // A lower bound only, which load cannot break: the launcher waited its 200 ms
    // inside the time this process measured around it.
    expect(r.ms).toBeGreaterThanOrEqual(200);
    const app = report(r);
    expect(app.env).toEqual({
      LISTEN_FDS: null, LISTEN_PID: null, LISTEN_FDNAMES: null, LISTEN_PIDFDID: null,
      NOTIFY_SOCKET: `${d}/notify`, FDSTORE: null, WATCHDOG_USEC: null, WATCHDOG_PID: null,
    });
    expect(app.open).toEqual(expectedOpen(0));
  });

  it('treats a socket file nobody listens on (ECONNREFUSED) as no agent', async () => {
    const d = dir();
    execFileSync('python3', ['-c',
      'import socket,sys; s=socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.bind(sys.argv[1])',
      path.join(d, 'restore')]);
    const r = await run(['--wait-ms', '100', '--dir', d, '--', 'true']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(/no agent at .*\/restore after 100 ms/);
  });

  it('connects to an agent that comes up while it waits', async () => {
    const d = dir();
    let pid = -1;
    // A long wait: the peer (python) may take seconds to start on a loaded machine; the
    // launcher stops waiting as soon as it connects, so this costs nothing when it is quick.
    const launched = run(['--wait-ms', '30000', '--dir', d, '--', 'python3', checkApp], { onSpawn: (p) => (pid = p) });
    await sleepingBetweenAttempts(pid); // it found no agent at least once: the agent comes up while it waits
    const peer = await startPeer(d, ['--fds', '2']);
    const r = await launched;
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(report(r).env.LISTEN_FDNAMES).toBe('fd0:fd1');
    await peer.result;
  });

  it('defaults --dir to the directory the binary is in', async () => {
    const d = dir();
    const exe = path.join(d, 'fdstore-exec');
    copyFileSync(launcher, exe);
    chmodSync(exe, 0o755);
    const r = await run(['--wait-ms', '0', '--', 'python3', checkApp], { exe, cwd: '/' });
    expect(r.stderr).toBe(`fdstore-exec: no agent at ${d}/restore after 0 ms, starting without stored fds\n`);
    expect(report(r).env.NOTIFY_SOCKET).toBe(`${d}/notify`);
  });

  it('makes a relative --dir absolute', async () => {
    const d = dir();
    mkdirSync(path.join(d, 'app'));
    const r = await run(['--wait-ms', '0', '--dir', 'app/', '--', 'python3', checkApp], { cwd: d });
    expect(r.stderr).toContain(`no agent at ${d}/app/restore`);
    expect(report(r).env.NOTIFY_SOCKET).toBe(`${d}/app/notify`);
  });
});
