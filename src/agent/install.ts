/**
 * Put the launcher into every container directory, so an app container that mounts
 * only its own directory has it. Written to a temp file and renamed: a running
 * binary cannot be overwritten (ETXTBSY), but it can be replaced.
 */
import { chmodSync, copyFileSync, existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../native/load.js';

import { LAUNCHER_NAME } from '../unit/layout.js';
export { LAUNCHER_NAME };

export function launcherSource(): string {
  return join(packageRoot(), 'agent', 'launcher', LAUNCHER_NAME);
}

export function installLauncher(dir: string, source = launcherSource()): string {
  if (!existsSync(source)) throw Object.assign(new Error(`launcher ${source} is missing (run npm install to build it)`), { code: 'ENOENT' });
  const dest = join(dir, LAUNCHER_NAME);
  const tmp = join(dir, `.${LAUNCHER_NAME}.${process.pid}.tmp`);
  copyFileSync(source, tmp);
  chmodSync(tmp, 0o755);
  renameSync(tmp, dest);
  return dest;
}
