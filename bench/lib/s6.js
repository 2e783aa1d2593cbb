/**
 * Optional comparison: s6-fdholder storing 1,000 unix-socket fds, one
 * s6-fdholder-store request per fd (its batch tools move at most 253 fds at once
 * and only as a whole dump). Runs only when s6 is installed (`apt-get install s6`).
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Child, ROOT, fdCount, sleep } from './proc.js';
import { median } from './stats.js';

const FDS = 1000;
/** One store takes over a second: a few repetitions are enough. */
const MAX_REPS = 3;

function installed() {
  try {
    execFileSync('sh', ['-c', 'command -v s6-fdholder-daemon && command -v s6-fdholder-store'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Rules that let our uid store any identifier. */
function rulesDir(dir) {
  const uid = join(dir, 'rules', 'uid', String(process.getuid()));
  mkdirSync(join(uid, 'env'), { recursive: true });
  writeFileSync(join(uid, 'allow'), '');
  writeFileSync(join(uid, 'env', 'S6_FDHOLDER_STORE_REGEX'), '.*\n');
  return join(dir, 'rules');
}

async function once(dir) {
  const socket = join(dir, 's6');
  const daemon = new Child('s6-fdholder-daemon', ['-1', '-n', String(FDS + 100), '-i', rulesDir(dir), socket]);
  try {
    await daemon.waitLine(() => true, 5_000);
    // -1 writes the newline, then closes stdout: count the fds once that is done.
    await sleep(100);
    const fds0 = fdCount(daemon.pid);
    const client = new Child('/usr/bin/python3', [join(ROOT, 'bench', 's6-store.py'), socket, String(FDS)]);
    const { ns } = await client.json(120_000);
    await client.stop(undefined, 10_000);
    const held = fdCount(daemon.pid) - fds0;
    if (held !== FDS) throw new Error(`s6-fdholderd holds ${held} more fds after storing ${FDS}`);
    return ns;
  } finally {
    await daemon.stop('SIGTERM');
  }
}

export async function s6Bench(reps, agentNs) {
  if (!installed()) return { skipped: 's6 is not installed (apt-get install s6)' };
  const ns = [];
  for (let r = 0; r < Math.min(reps, MAX_REPS); r++) {
    const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-s6-'));
    try {
      ns.push(await once(dir));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    await sleep(50);
    process.stderr.write('.');
  }
  return { fds: FDS, ns, medianNs: median(ns), agentNs: agentNs ?? NaN };
}
