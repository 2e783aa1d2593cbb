#!/usr/bin/env node
// Writes crds/*.yaml from the built generator (dist/crd/render.js): `npm run gen:crds`
// builds first. With --check, writes nothing and exits 1 when a committed file differs.
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { crdFiles } = await import(join(root, 'dist/crd/render.js'));
const check = process.argv.includes('--check');
let stale = 0;
for (const f of crdFiles()) {
  const path = join(root, f.path);
  let old = null;
  try {
    old = readFileSync(path, 'utf8');
  } catch {
    // missing: written below, or stale under --check
  }
  if (old === f.text) continue;
  if (check) {
    console.error(`${f.path}: differs from the generator (run npm run gen:crds)`);
    stale++;
    continue;
  }
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, f.text);
  console.log(`wrote ${f.path}`);
}
process.exit(stale === 0 ? 0 : 1);
