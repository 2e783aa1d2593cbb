/**
 * The addon verbs behind the run dir's trust (issue 7 items 10, 12, 13):
 * fchmodat(AT_SYMLINK_NOFOLLOW), flock(LOCK_EX|LOCK_NB), PR_SET_DUMPABLE.
 */
import { closeSync, constants, lstatSync, mkdtempSync, openSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { pathToFileURL } from 'node:url';
import { REPO } from '../helpers/proc.js';
import { afterEach, describe, expect, it } from 'vitest';
import { chmodAt, countFds, lockExclusive, SysError } from '../../src/native/sys.js';

const dirs: string[] = [];
afterEach(() => dirs.splice(0).forEach((d) => rmSync(d, { recursive: true, force: true })));
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'fdstore-trust-'));
  dirs.push(d);
  return d;
}

describe('chmodAt', () => {
  it('changes a file in the directory fd, and refuses a symlink instead of chmod-ing its target', () => {
    const d = tmp();
    const victim = join(d, 'victim');
    writeFileSync(victim, 'x', { mode: 0o600 });
    writeFileSync(join(d, 'mine'), 'x', { mode: 0o600 });
    symlinkSync(victim, join(d, 'link'));
    const dfd = openSync(d, constants.O_RDONLY | constants.O_DIRECTORY);
    try {
      chmodAt(dfd, 'mine', 0o644);
      expect(statSync(join(d, 'mine')).mode & 0o7777).toBe(0o644);
      let err: unknown;
      try {
        chmodAt(dfd, 'link', 0o666);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(SysError);
      expect((err as SysError).code).toMatch(/^(ENOTSUP|EOPNOTSUPP)$/);
      expect(statSync(victim).mode & 0o7777).toBe(0o600);
      expect(lstatSync(join(d, 'link')).isSymbolicLink()).toBe(true);
      expect(() => chmodAt(dfd, 'a/b', 0o600)).toThrow(TypeError);
    } finally {
      closeSync(dfd);
    }
  });
});

describe('lockExclusive', () => {
  it('is taken once per open file description, and free again when that closes', () => {
    const f = join(tmp(), 'lock');
    writeFileSync(f, '');
    const before = countFds();
    const a = openSync(f, 'r+');
    const b = openSync(f, 'r+');
    expect(lockExclusive(a)).toBe(true);
    expect(lockExclusive(b)).toBe(false);
    closeSync(a);
    expect(lockExclusive(b)).toBe(true);
    closeSync(b);
    expect(countFds()).toBe(before);
  });
});

describe('setDumpable', () => {
  it('clears the dumpable flag of the calling process', () => {
    // In a child (the built module, as the agent runs it): the test runner's own process stays dumpable.
    const sys = pathToFileURL(join(REPO, 'dist', 'native', 'sys.js')).href;
    const code = `import(${JSON.stringify(sys)}).then((s) => {
      const was = s.isDumpable(); s.setDumpable(false); console.log(JSON.stringify([was, s.isDumpable()]));
    })`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual([true, false]);
  });
});
