/**
 * Tests spawn the real agent (`bin/fdstore.js`), which runs the compiled CLI in
 * dist/. Build it first, so `npm test` always tests the source it sits beside,
 * never a dist/ left over from an earlier `npm ci`.
 */
import { execFileSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export default function setup(): void {
  const root = join(import.meta.dirname, '..');
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  // From scratch: a module moved or deleted in src/ must not linger in dist/.
  rmSync(join(root, 'dist'), { recursive: true, force: true });
  execFileSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.build.json')], { cwd: root, stdio: 'inherit' });
}
