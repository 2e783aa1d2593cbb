// fdstore-exec against a peer that plays the agent (test/helpers/restore_peer.py):
// the fds, their numbers, flags and names, the environment, and every way a live
// agent can fail a restore.
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  buildLauncher, checkApp, env, expectedOpen, launcher, report, run, startPeer, tempDir, type Peer, type RunOptions,
} from './harness.js';

beforeAll(buildLauncher);

let cleanups: Array<() => void> = [];
afterEach(() => {
  for (const c of cleanups.reverse()) c();
  cleanups = [];
});

async function restore(peerArgs: string[], opts: RunOptions = {}, app = ['python3', checkApp]) {
  const t = tempDir();
  cleanups.push(t.cleanup);
  const peer: Peer = await startPeer(t.dir, peerArgs);
  cleanups.push(peer.kill);
  const r = await run(['--dir', t.dir, '--', ...app], opts);
  return { dir: t.dir, peer, r };
}

const stale = {
  LISTEN_FDS: '5', LISTEN_PID: '1', LISTEN_FDNAMES: 'a:b:c:d:e', LISTEN_PIDFDID: '7',
  WATCHDOG_USEC: '1000', WATCHDOG_PID: '1', FDSTORE: '9', NOTIFY_SOCKET: '/elsewhere/notify',
};

describe('restore', () => {
  it('with 0 fds sets no LISTEN_* variables', async () => {
    const { dir, r } = await restore([], { env: env(stale) });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const app = report(r);
    expect(app.env).toEqual({
      LISTEN_FDS: null, LISTEN_PID: null, LISTEN_FDNAMES: null, LISTEN_PIDFDID: null,
      NOTIFY_SOCKET: `${dir}/notify`, FDSTORE: null, WATCHDOG_USEC: null, WATCHDOG_PID: null,
    });
    expect(app.open).toEqual(expectedOpen(0));
  });

  it('puts 3 named fds at 3..5, inheritable, the very objects the agent sent', async () => {
    const { dir, peer, r } = await restore(['--trio', '--fdstore', '7', '--watchdog-usec', '3000000'], {
      env: env(stale),
    });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const app = report(r);
    // exec in place: the app's pid is the launcher's, which the agent saw connect
    expect(app.pid).toBe(r.pid);
    expect(app.env).toEqual({
      LISTEN_FDS: '3', LISTEN_PID: String(r.pid), LISTEN_FDNAMES: 'sock:mem:pipe', LISTEN_PIDFDID: null,
      NOTIFY_SOCKET: `${dir}/notify`, FDSTORE: '7', WATCHDOG_USEC: '3000000', WATCHDOG_PID: String(r.pid),
    });
    expect(app.probes).toEqual({ sock: 'from-peer', mem: 'memfd-content', pipe: 'piped' });
    expect(app.cloexec).toEqual([]);
    expect(app.open).toEqual(expectedOpen(3));
    expect(await peer.result).toEqual({ sent: 3, echo: 'from-app' });
  });

  it('overwrites an inherited fd sitting where a stored fd goes', async () => {
    const { r } = await restore(['--trio'], { stdio: ['ignore', 'pipe', 'pipe', 'pipe'] });
    expect(r.code).toBe(0);
    const app = report(r);
    expect(app.probes).toEqual({ sock: 'from-peer', mem: 'memfd-content', pipe: 'piped' });
    expect(app.open).toEqual(expectedOpen(3));
  });

  it('leaves a closed stdin closed', async () => {
    const { r } = await restore(['--trio'], {}, ['python3', checkApp]);
    expect(report(r).open).toEqual(expectedOpen(3));
    // the same again, with fd 0 closed before the launcher starts
    const t = tempDir();
    cleanups.push(t.cleanup);
    const peer = await startPeer(t.dir, ['--trio']);
    cleanups.push(peer.kill);
    const closed = await run(
      ['-c', 'exec "$@" 0<&-', 'sh', launcher, '--dir', t.dir, '--', 'python3', checkApp],
      { exe: '/bin/sh' },
    );
    expect(closed.stderr).toBe('');
    const app = report(closed);
    expect(app.open).toEqual(expectedOpen(3, [1, 2]));
    expect(app.probes).toEqual({ sock: 'from-peer', mem: 'memfd-content', pipe: 'piped' });
    expect(app.cloexec).toEqual([]);
  });

  it('with notify=0 sets no NOTIFY_SOCKET and no FDSTORE', async () => {
    const { r } = await restore(['--fds', '1', '--notify', '0', '--fdstore', '5'], { env: env(stale) });
    expect(r.code).toBe(0);
    const app = report(r);
    expect(app.env.NOTIFY_SOCKET).toBeNull();
    expect(app.env.FDSTORE).toBeNull();
    expect(app.env.LISTEN_FDS).toBe('1');
  });

  it('ignores header keys it does not know', async () => {
    const { r } = await restore(['--fds', '2', '--extra-header', 'future=yes']);
    expect(r.code).toBe(0);
    expect(report(r).env.LISTEN_FDNAMES).toBe('fd0:fd1');
  });

  it.each([
    [600, 253],
    [600, 1],
    [5000, 253],
  ])('places %i fds sent %i per message in order', async (n, batch) => {
    const { peer, r } = await restore(['--fds', String(n), '--batch', String(batch)]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const app = report(r);
    expect(app.env.LISTEN_FDS).toBe(String(n));
    expect(app.env.LISTEN_FDNAMES).toBe(Array.from({ length: n }, (_, i) => `fd${i}`).join(':'));
    expect(app.misplaced).toEqual([]);
    expect(app.cloexec).toEqual([]);
    expect(app.open).toEqual(expectedOpen(n));
    expect(await peer.result).toEqual({ sent: n });
  }, 30_000);

  it('says why when the names exceed Linux\'s 128 KiB per environment string', async () => {
    // 600 names of ~250 bytes: 150 KiB. systemd's exec would fail the same way.
    const { r } = await restore(['--fds', '600', '--name-prefix', 'n'.repeat(248)], {}, ['true']);
    expect(r.code).toBe(126);
    expect(r.stderr).toMatch(/^fdstore-exec: true: Argument list too long \(LISTEN_FDNAMES is \d+ bytes, Linux allows 131071 per variable\)\n$/);
  });
});

describe('a failing agent exits 111 without running the command', () => {
  async function fails(peerArgs: string[], pattern: RegExp, opts: RunOptions = {}) {
    const { r } = await restore(peerArgs, opts, ['sh', '-c', 'echo ran']);
    expect(r.code).toBe(111);
    expect(r.stdout).toBe('');
    expect(r.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(r.stderr).toMatch(/^fdstore-exec: /);
    expect(r.stderr).toMatch(pattern);
    return r;
  }

  it('when it sends X', () =>
    fails(['--fds', '600', '--abort-after', '1'], /aborted the restore: store is being cleaned$/m));

  it('when it sends X instead of the header', () =>
    fails(['--raw-header', 'X not today\\n'], /aborted the restore: not today$/m));

  it('when it sends a bare X', () =>
    fails(['--raw-header', 'X\\n'], /aborted the restore: \(no reason given\)$/m));

  it('when it closes mid-transfer', () =>
    fails(['--fds', '600', '--close-after', '1'], /closed the connection after 253 of 600 fds/));

  it('when it stalls (FDSTORE_EXEC_TIMEOUT_MS)', async () => {
    const r = await fails(['--fds', '600', '--stall-after', '1'], /sent nothing for 300 ms/, {
      env: env({ FDSTORE_EXEC_TIMEOUT_MS: '300' }),
    });
    // The launcher gave up after its 300 ms, not before (a lower bound that load cannot
    // break). That it used 300 and not the 5 s default, the message says: no upper
    // bound on a loaded machine's wall time.
    expect(r.ms).toBeGreaterThanOrEqual(300);
  });

  it('when it stalls before the end message', () =>
    fails(['--stall-after', '0'], /sent nothing for 200 ms/, { env: env({ FDSTORE_EXEC_TIMEOUT_MS: '200' }) }));

  it('when it sends fewer fds than its header said', () =>
    fails(['--fds', '3', '--header-fds', '5'], /sent 3 fds, its header said 5/));

  it('when it sends more fds than its header said', () =>
    fails(['--fds', '3', '--header-fds', '2'], /more fds than its header said \(2\)/));

  it.each([
    [['--raw-header', 'FDSTORE-RESTORE 2\\nfds=0\\n'], /header does not start/],
    [['--raw-header', 'FDSTORE-RESTORE 1\\nnotify=1\\n'], /header without fds=/],
    [['--raw-header', 'FDSTORE-RESTORE 1\\nfds=-1\\n'], /fds=/],
    [['--raw-header', 'FDSTORE-RESTORE 1\\nfds=1\\ngarbage\\n'], /header line without '='/],
    [['--raw', 'Q\\n'], /unknown message/],
    [['--raw', 'F\\nname\\n'], /batch without fds/],
    [['--fds', '2', '--name-prefix', 'a:'], /fd name contains ':'/],
    [['--fds', '2', '--name-prefix', 'n'.repeat(255)], /fd name longer than 255 bytes/],
  ])('when it sends a malformed message %j', async (args, pattern) => {
    await fails(args, pattern);
  });
});
