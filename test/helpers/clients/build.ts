/**
 * Builds the C test clients with gcc against the system's libsystemd
 * (pkg-config libsystemd) into test/.build/, once per source change. Test files
 * run in parallel workers, so each build writes a private temp file and renames
 * it into place: a reader never sees a half-written binary.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../proc.js';

export const BUILD_DIR = join(REPO, 'test', '.build');
const SRC_DIR = join(REPO, 'test', 'helpers', 'clients');

export interface Clients {
  /** The libsystemd client (see notify_fds.c). */
  notifyFds: string;
}

function build(name: string): string {
  const src = join(SRC_DIR, `${name}.c`);
  const out = join(BUILD_DIR, name);
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(BUILD_DIR, { recursive: true, mode: 0o755 });
  chmodSync(BUILD_DIR, 0o755); // the non-root uid tests exec from here
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libsystemd'], { encoding: 'utf8' }).trim().split(/\s+/);
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('gcc', ['-O2', '-g', '-Wall', '-Wextra', '-Werror', '-o', tmp, src, ...flags.filter((f) => f !== '')], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
  return out;
}

export function buildClients(): Clients {
  return { notifyFds: build('notify_fds') };
}
