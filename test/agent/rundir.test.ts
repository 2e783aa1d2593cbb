/**
 * Issue 7 items 10 and 14: the run dir is shared with code the agent does not
 * trust. Every attack below is reproduced with real files as root and refused
 * with exit 2 and one line naming the path and its owner; every bad run dir
 * fails promptly (the test's own timeout would catch a hang).
 */
import { chmodSync, chownSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync, statSync, symlinkSync, writeFileSync, constants } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { installLauncher, launcherSource } from '../../src/agent/install.js';
import { startAgent, tempRoot, type Agent } from '../helpers/agent.js';
import { FDSTORE_BIN, isRoot, NEEDS_ROOT, run } from '../helpers/proc.js';
import { rmSync } from 'node:fs';

const ATTACKER = 12345;
const roots: string[] = [];
let agent: Agent | null = null;
afterEach(async () => {
  await agent?.dispose();
  agent = null;
  roots.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true }));
});

/** A fresh root dir holding DIR (`run`), 0777 like an emptyDir. */
function sharedRunDir(): { root: string; dir: string } {
  const root = tempRoot();
  roots.push(root);
  const dir = join(root, 'run');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  return { root, dir };
}

function agentCli(runDir: string, extra: string[] = [], user?: { uid: number; gid: number }) {
  return run(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', runDir, '--container', 'b', '--listen', 'off', ...extra], {
    placement: { user },
  });
}

/** The one start-up failure line. */
function failure(stderr: string): string {
  const lines = stderr.trim().split('\n').filter((l) => l !== '');
  const parsed = lines.map((l) => JSON.parse(l) as { msg: string; error?: string });
  const fails = parsed.filter((l) => l.msg === 'agent failed to start');
  expect(fails, stderr).toHaveLength(1);
  return fails[0]!.error ?? '';
}

describe('item 10: untrusted paths in the run dir are refused', () => {
  it.skipIf(!isRoot)(`refuses an attacker-owned DIR/b, and binds nothing in it ${NEEDS_ROOT}`, async () => {
    const { dir } = sharedRunDir();
    mkdirSync(join(dir, 'b'), { mode: 0o755 });
    chownSync(join(dir, 'b'), ATTACKER, ATTACKER);
    const r = await agentCli(dir);
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(new RegExp(`${dir}/b is owned by uid ${ATTACKER}, not the agent's uid 0`));
    expect(existsSync(join(dir, 'b', 'notify'))).toBe(false);
    expect(existsSync(join(dir, 'b', 'fdstore-exec'))).toBe(false);
  });

  it.skipIf(!isRoot)(`refuses a DIR/b writable by others even when the agent owns it ${NEEDS_ROOT}`, async () => {
    const { dir } = sharedRunDir();
    mkdirSync(join(dir, 'b'));
    chmodSync(join(dir, 'b'), 0o777);
    const r = await agentCli(dir);
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(new RegExp(`${dir}/b \\(owned by uid 0\\) is writable by group or others \\(mode 0777\\)`));
  });

  it.skipIf(!isRoot)(`never follows a symlinked DIR/b ${NEEDS_ROOT}`, async () => {
    const { root, dir } = sharedRunDir();
    const elsewhere = join(root, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o755 });
    symlinkSync(elsewhere, join(dir, 'b'));
    const r = await agentCli(dir);
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(new RegExp(`${dir}/b is a symlink \\(owned by uid 0\\): refusing to follow it`));
    expect(existsSync(join(elsewhere, 'notify'))).toBe(false);
  });

  it.skipIf(!isRoot)(`refuses a symlinked or attacker-owned run dir itself ${NEEDS_ROOT}`, async () => {
    const { root, dir } = sharedRunDir();
    const link = join(root, 'link');
    symlinkSync(dir, link);
    const r1 = await agentCli(link);
    expect(r1.code).toBe(2);
    expect(failure(r1.stderr)).toMatch(/run dir .*\/link is a symlink/);
    chownSync(dir, ATTACKER, ATTACKER);
    const r2 = await agentCli(dir);
    expect(r2.code).toBe(2);
    expect(failure(r2.stderr)).toMatch(new RegExp(`run dir ${dir} is owned by uid ${ATTACKER}, not the agent's uid 0 or root`));
  });

  it.skipIf(!isRoot)(`refuses an attacker-owned DIR/.fdstore (the agent), and fdstore ls will not talk to the fake agent in it ${NEEDS_ROOT}`, async () => {
    const { dir } = sharedRunDir();
    const admin = join(dir, '.fdstore');
    mkdirSync(admin, { mode: 0o700 });
    chownSync(admin, ATTACKER, ATTACKER);
    const r = await agentCli(dir);
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(new RegExp(`${admin} is owned by uid ${ATTACKER}`));

    // The attacker's fake agent on DIR/.fdstore/admin.sock.
    let connections = 0;
    const fake: Server = createServer((s) => {
      connections++;
      s.end('{"ok":true,"containers":[],"fds":[]}');
    });
    await new Promise<void>((res) => fake.listen(join(admin, 'admin.sock'), res));
    try {
      const ls = await run(process.execPath, [FDSTORE_BIN, 'ls', '--run-dir', dir]);
      expect(ls.code).not.toBe(0);
      expect(ls.stderr).toMatch(new RegExp(`${admin} is owned by uid ${ATTACKER}, not this uid 0`));
      // Group/other-writable is refused too, whoever owns it.
      chownSync(admin, 0, 0);
      chmodSync(admin, 0o777);
      const ls2 = await run(process.execPath, [FDSTORE_BIN, 'ls', '--run-dir', dir]);
      expect(ls2.code).not.toBe(0);
      expect(ls2.stderr).toMatch(/writable by group or others \(mode 0777\)/);
      expect(connections).toBe(0);
    } finally {
      await new Promise<void>((res) => fake.close(() => res()));
    }
  });

  it('replaces a symlink planted at DIR/b/notify instead of chmod-ing its target', async () => {
    const { root, dir } = sharedRunDir();
    const victim = join(root, 'victim');
    writeFileSync(victim, 'secret', { mode: 0o600 });
    mkdirSync(join(dir, 'b'), { mode: 0o755 });
    symlinkSync(victim, join(dir, 'b', 'notify'));
    symlinkSync(victim, join(dir, 'b', 'restore'));
    agent = await startAgent({ containers: ['b'], args: ['--run-dir', dir] });
    expect(statSync(victim).mode & 0o7777).toBe(0o600);
    expect(readFileSync(victim, 'utf8')).toBe('secret');
    expect(lstatSync(join(dir, 'b', 'notify')).isSocket()).toBe(true);
    expect(lstatSync(join(dir, 'b', 'notify')).mode & 0o777).toBe(0o666);
    // DIR is the agent's and 0777: it gets the sticky bit, so nobody renames DIR/b away.
    expect(statSync(dir).mode & 0o7777).toBe(0o1777);
  });

  it.skipIf(!isRoot)(`accepts a root-owned 0777 run dir (an emptyDir) under a non-root agent, and says it cannot fix it ${NEEDS_ROOT}`, async () => {
    const { dir } = sharedRunDir();
    const user = { uid: 64919, gid: 64919 };
    agent = await startAgent({ containers: ['b'], user, args: ['--run-dir', dir] });
    const note = agent.logs.find((l) => l.msg === 'run dir is shared');
    expect(String(note?.note)).toMatch(new RegExp(`run dir ${dir} \\(owned by uid 0, mode 0777\\) is writable by others without the sticky bit and the agent \\(uid 64919\\) cannot change that`));
    expect(statSync(dir).mode & 0o7777).toBe(0o777);
    expect(statSync(join(dir, 'b')).uid).toBe(64919);
    const ls = await agent.cli(['ls', '--run-dir', dir, '--json']);
    expect(ls.code, ls.stderr).toBe(0);
  });

  it('installs the launcher through a pre-planted .fdstore-exec.PID.tmp symlink without writing its target', () => {
    const { root, dir } = sharedRunDir();
    const victim = join(root, 'victim');
    writeFileSync(victim, 'root-owned', { mode: 0o600 });
    const d = join(dir, 'b');
    mkdirSync(d, { mode: 0o755 });
    symlinkSync(victim, join(d, `.fdstore-exec.${process.pid}.tmp`));
    const fd = openSync(d, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      installLauncher(fd, d);
    } finally {
      closeSync(fd);
    }
    expect(readFileSync(victim, 'utf8')).toBe('root-owned');
    expect(statSync(victim).mode & 0o7777).toBe(0o600);
    expect(readFileSync(join(d, 'fdstore-exec')).equals(readFileSync(launcherSource()))).toBe(true);
    expect(statSync(join(d, 'fdstore-exec')).mode & 0o777).toBe(0o755);
    expect(existsSync(join(d, `.fdstore-exec.${process.pid}.tmp`))).toBe(false);
  });
});

describe('item 14: a bad run dir fails promptly with one clear line', () => {
  it.skipIf(!isRoot)(`--run-dir under /proc exits 2 (Node's recursive mkdir spun there forever) ${NEEDS_ROOT}`, async () => {
    const r = await agentCli('/proc/fdstore-no-such-dir');
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(/cannot create run dir \/proc\/fdstore-no-such-dir: ENOENT/);
    const deep = await agentCli('/proc/fdstore-no/such/dir');
    expect(deep.code).toBe(2);
    expect(failure(deep.stderr)).toMatch(/cannot create \/proc\/fdstore-no \(parent of run dir \/proc\/fdstore-no\/such\/dir\): ENOENT/);
  });

  it.skipIf(!isRoot)(`a file as run dir exits 2 ${NEEDS_ROOT}`, async () => {
    const { root } = sharedRunDir();
    const file = join(root, 'file');
    writeFileSync(file, '');
    const r = await agentCli(file);
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(new RegExp(`run dir ${file} is not a directory \\(owned by uid 0\\)`));
  });

  it.skipIf(!isRoot)(`a run dir the agent may not create exits 2 ${NEEDS_ROOT}`, async () => {
    const { root } = sharedRunDir();
    const closed = join(root, 'closed');
    mkdirSync(closed, { mode: 0o700 });
    const r = await agentCli(join(closed, 'run'), [], { uid: ATTACKER, gid: ATTACKER });
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(/cannot use run dir .*\/closed\/run: .*\/closed\/run: EACCES|cannot create run dir .*\/closed\/run: EACCES/);
  });

  it('a run dir too long for sun_path exits 2', async () => {
    const { root } = sharedRunDir();
    const r = await agentCli(join(root, 'x'.repeat(100)));
    expect(r.code).toBe(2);
    expect(failure(r.stderr)).toMatch(/longer than 107 bytes/);
  });
});
