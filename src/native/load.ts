import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Binding } from './binding.js';

/** Where the addon is built relative to the package root (package.json's install script). */
export const ADDON_RELATIVE_PATH = join('agent', 'addon', 'build', 'Release', 'fdstore.node');

/**
 * This file runs as src/native/load.ts under vitest and as dist/native/load.js when
 * built, so the addon is found from the package root rather than a fixed number
 * of `..`.
 */
export function packageRoot(from: string = dirname(fileURLToPath(import.meta.url))): string {
  let dir = from;
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) throw new Error(`fdstore: no package.json above ${from}`);
    dir = up;
  }
}

function load(): Binding {
  const path = join(packageRoot(), ADDON_RELATIVE_PATH);
  const require = createRequire(import.meta.url);
  try {
    return require(path) as Binding;
  } catch (err) {
    const e = new Error(`fdstore: cannot load native addon ${path} (run npm install to build it)`, {
      cause: err,
    });
    throw e;
  }
}

export const binding: Binding = load();
