#!/usr/bin/env node
// Writes crds/*.yaml from the built generator (dist/crd/render.js): `npm run gen:crds`
// builds first. With --check, writes nothing and exits 1 when a committed file differs.
// Each CRD is written twice, the same bytes: crds/ (kubectl apply -f crds/) and the Helm
// chart's copy in charts/fdstore/files/crds/ (a chart can read only its own files;
// test/chart/files.test.ts checks the two are equal).
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { crdFiles } = await import(join(root, 'dist/crd/render.js'));
const check = process.argv.includes('--check');
let stale = 0;
const CHART_COPY = 'charts/fdstore/files/';
for (const f of crdFiles().flatMap((c) => [c, { ...c, path: CHART_COPY + c.path }])) {
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
