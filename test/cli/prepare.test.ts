// `fdstore prepare`, the init container of the chart's classic mode, as the pod runs
// it: in a root-owned 0777 run dir (an emptyDir), as the agent's uid; then the app's
// launcher starts before the agent (a classic pod starts its containers together),
// waits for it, and gets its restore; the agent starts as on a first start and
// replaces the launcher. Refusals exit 2 with one line.
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { NEEDS_ROOT, isRoot, place, run, sleepingBetweenAttempts, type Placement } from '../helpers/proc.js';

const REPO = join(import.meta.dirname, '..', '..');
const FDSTORE = join(REPO, 'bin', 'fdstore.js');
const LAUNCHER = join(REPO, 'agent', 'launcher', 'fdstore-exec');
const AGENT = { uid: 64919, gid: 64919 };
const APP = { uid: 10001, gid: 10001 };
const roots: string[] = [];
afterAll(() => roots.forEach((r) => rmSync(r, { recursive: true, force: true })));

/** A run dir as an emptyDir is: root's, mode 0777, in a directory every uid can reach. */
function emptyDir(): string {
  const root = mkdtempSync(join(tmpdir(), 'fdstore-prepare-'));
  roots.push(root);
  chmodSync(root, 0o755);
  const dir = join(root, 'run');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  return dir;
}

const prepare = (args: string[], placement: Placement = {}) => run(process.execPath, [FDSTORE, 'prepare', ...args], { placement });

describe('fdstore prepare', () => {
  it.skipIf(!isRoot)(`classic mode: prepare as the agent, the launcher before the agent, then the agent ${NEEDS_ROOT}`, async () => {
    const dir = emptyDir();
    const r = await prepare(['--run-dir', dir, '--container', 'app', '--container', 'side'], { user: AGENT });
    expect([r.code, r.stdout, r.stderr]).toEqual([0, `prepared ${dir}/app ${dir}/side\n`, '']);
    for (const c of ['app', 'side']) {
      const st = statSync(join(dir, c));
      expect([st.uid, st.mode & 0o7777]).toEqual([AGENT.uid, 0o755]);
      const l = statSync(join(dir, c, 'fdstore-exec'));
      expect([l.uid, l.mode & 0o7777]).toEqual([AGENT.uid, 0o755]);
      expect(readFileSync(join(dir, c, 'fdstore-exec')).equals(readFileSync(LAUNCHER))).toBe(true);
    }
    const before = statSync(join(dir, 'app', 'fdstore-exec')).ino;

    // The app starts first: its launcher (as the app's uid, from the app's own directory) waits.
    const [lf, la] = place({ user: APP }, join(dir, 'app', 'fdstore-exec'), ['--wait-ms', '60000', '--', 'sh', '-c', 'echo "$NOTIFY_SOCKET ${LISTEN_FDS:-none}"']);
    const app = spawn(lf, la, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    app.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    let appErr = '';
    app.stderr.setEncoding('utf8').on('data', (d: string) => (appErr += d));
    const appExit = new Promise<number | null>((res) => app.on('close', res));
    await sleepingBetweenAttempts(app.pid!);

    const [af, aa] = place({ user: AGENT }, process.execPath, [FDSTORE, 'agent', '--run-dir', dir, '--container', 'app', '--container', 'side', '--http', 'off']);
    const agent = spawn(af, aa, { stdio: ['ignore', 'ignore', 'pipe'] });
    let logs = '';
    agent.stderr.setEncoding('utf8').on('data', (d: string) => (logs += d));
    const agentExit = new Promise<number | null>((res) => agent.on('close', res));
    try {
      expect([await appExit, appErr]).toEqual([0, '']);
      expect(out).toBe(`${join(dir, "app")}/notify none\n`);
      // A first start for the agent (no sockets were there: no run is "unknown since agent
      // restart"), the app's run seen to its exit, and the launcher replaced by rename.
      const states = async (): Promise<string[][]> => {
        const ls = await run(process.execPath, [FDSTORE, 'ls', '--run-dir', dir, '--json'], { placement: { user: AGENT } });
        expect(ls.code).toBe(0);
        return (JSON.parse(ls.stdout) as { containers: { name: string; state: string }[] }).containers.map((c) => [c.name, c.state]).sort();
      };
      const deadline = Date.now() + 20_000;
      let seen = await states();
      // the agent learns of the exit from the pidfd, after the launcher's process is gone
      while (seen[0]![1] !== 'exited' && Date.now() < deadline) seen = await states();
      expect(seen).toEqual([['app', 'exited'], ['side', 'starting']]);
      expect(statSync(join(dir, 'app', 'fdstore-exec')).ino).not.toBe(before);
    } finally {
      agent.kill('SIGTERM');
      expect(await agentExit).toBe(0);
    }
    expect(logs).not.toContain('"level":"error"');
  });

  it.skipIf(!isRoot)(`refuses a container directory it does not own (the kubelet's root-made subPath) ${NEEDS_ROOT}`, async () => {
    const dir = emptyDir();
    mkdirSync(join(dir, 'app'));
    const r = await prepare(['--run-dir', dir, '--container', 'app'], { user: AGENT });
    expect([r.code, r.stderr]).toEqual([2, `fdstore prepare: ${dir}/app is owned by uid 0, not the agent's uid ${AGENT.uid}: refusing it\n`]);
    chownSync(join(dir, 'app'), AGENT.uid, AGENT.gid);
    expect((await prepare(['--run-dir', dir, '--container', 'app'], { user: AGENT })).code).toBe(0);
  });

  it('is idempotent: a second run (an init container re-run) succeeds', async () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'fdstore-prepare-')), 'run');
    roots.push(dir);
    expect((await prepare(['--run-dir', dir, '--container', 'app'])).code).toBe(0);
    expect((await prepare(['--run-dir', dir, '--container', 'app'])).code).toBe(0);
    expect(readFileSync(join(dir, 'app', 'fdstore-exec')).equals(readFileSync(LAUNCHER))).toBe(true);
  });

  it.each([
    ['no container', ['--run-dir', '/tmp/x'], '--run-dir and at least one --container are required'],
    ['no run dir', ['--container', 'app'], '--run-dir and at least one --container are required'],
    ['a bad name', ['--run-dir', '/tmp/x', '--container', 'App_1'], 'invalid container name "App_1"'],
    ['an unknown flag', ['--run-dir', '/tmp/x', '--container', 'a', '--bogus'], "Unknown option '--bogus'"],
  ])('usage: %s exits 2', async (_what, args, message) => {
    const r = await prepare(args);
    expect([r.code, r.stderr.split('\n')[0]]).toEqual([2, expect.stringContaining(message)]);
    expect(r.stderr).toContain('Usage: fdstore prepare');
  });

  it('--help prints the usage and exits 0', async () => {
    const r = await prepare(['--help']);
    expect([r.code, r.stdout]).toEqual([0, expect.stringContaining('Usage: fdstore prepare --run-dir DIR --container NAME')]);
  });
});
