/**
 * Put the launcher into every container directory, so an app container that mounts
 * only its own directory has it. Written to a temp file and renamed: a running
 * binary cannot be overwritten (ETXTBSY), but it can be replaced.
 *
 * Everything goes through the fd of the checked container directory (rundir.ts),
 * and the temp file is created with O_CREAT|O_EXCL|O_NOFOLLOW after unlinking
 * whatever has its name: a pre-planted `.fdstore-exec.PID.tmp` symlink is removed,
 * never written through (issue 7 item 10).
 */
import { closeSync, constants, existsSync, fchmodSync, readFileSync, renameSync, unlinkSync, writeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native/load.js';
import { at } from './rundir.js';

import { LAUNCHER_NAME } from '../unit/layout.js';
export { LAUNCHER_NAME };

export function launcherSource(): string {
  return join(packageRoot(), 'agent', 'launcher', LAUNCHER_NAME);
}

/** Install the launcher into the directory open as dirfd (named dir in messages). */
export function installLauncher(dirfd: number, dir: string, source = launcherSource()): string {
  if (!existsSync(source)) throw Object.assign(new Error(`launcher ${source} is missing (run npm install to build it)`), { code: 'ENOENT' });
  const image = readFileSync(source);
  const tmpName = `.${LAUNCHER_NAME}.${process.pid}.tmp`;
  const tmp = at(dirfd, tmpName);
  try {
    unlinkSync(tmp); // unlink never follows a symlink
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o700);
  try {
    for (let off = 0; off < image.length; ) off += writeSync(fd, image, off, image.length - off);
    // By fd, whatever the umask: every app uid must run it.
    fchmodSync(fd, 0o755);
  } catch (e) {
    closeSync(fd);
    unlinkSync(tmp);
    throw e;
  }
  closeSync(fd);
  renameSync(tmp, at(dirfd, LAUNCHER_NAME));
  return join(dir, LAUNCHER_NAME);
}
