/**
 * Restore latency: from spawning the launcher to the app's first instruction,
 * with N stored unix-socket fds. The agent path (fdstore-exec fetching from the
 * agent) against the raw C pair (restore-baseline --receive fetching from
 * restore-baseline --serve) holding the same kind and number of fds, both started
 * by the same C spawner (spawn-time) and exec'ing the same app (first-instr).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILD, Child, fdCount, run, sleep, startAgent } from './proc.js';
import { median } from './stats.js';

export const RESTORE_SIZES = [1, 1000, 10000, 19000];

const SPAWN = join(BUILD, 'spawn-time');
const APP = join(BUILD, 'first-instr');
const BASELINE = join(BUILD, 'restore-baseline');
/** Both paths get one untimed restore per size first. */
const WARMUP = 1;
/**
 * A one-letter FDNAME: LISTEN_FDNAMES must fit in one environment string
 * (MAX_ARG_STRLEN, 128 KiB), and 19,000 default names ("stored:" x 19,000 =
 * 133,000 bytes) do not: execve fails with E2BIG. At most 18,724 fds can be
 * restored under the default name.
 */
const FILL_NAME = 'b';
/** Pause between restores: lets the agent see the previous app exit first. */
const GAP_MS = 30;

async function timed(args, n) {
  const [line] = await run(SPAWN, args, 30_000);
  const r = JSON.parse(line);
  if (!r.ok || r.listenFds !== n) throw new Error(`restore of ${n} fds gave ${line}`);
  return r.us * 1000;
}

/** Adds `count` socket fds to the agent's store; the returned sender holds their peers. */
async function fill(agent, count, name) {
  const before = fdCount(agent.pid);
  const sender = new Child(join(BUILD, 'store-sender'), ['--hold', '--name', name, agent.notify, String(count)], { stdin: 'pipe' });
  await sender.json(120_000);
  const added = fdCount(agent.pid) - before;
  if (added !== count) throw new Error(`agent holds ${added} more fds after storing ${count}`);
  return sender;
}

async function atSize(agent, n, reps) {
  const name = `fdstore-bench-restore-${process.pid}-${n}`;
  const server = new Child(BASELINE, ['--serve', name, String(n)]);
  try {
    await server.waitLine((l) => l === 'ready', 10_000);
    const paths = {
      agent: [agent.launcher, '--', APP],
      raw: [BASELINE, '--receive', name, String(n), APP],
    };
    const ns = { agent: [], raw: [] };
    for (let r = 0; r < WARMUP + reps; r++) {
      // Alternate which path goes first, so neither always follows the other.
      for (const p of r % 2 ? ['raw', 'agent'] : ['agent', 'raw']) {
        const t = await timed(paths[p], n);
        if (r >= WARMUP) ns[p].push(t);
        await sleep(GAP_MS);
      }
    }
    return ns;
  } finally {
    await server.stop('SIGKILL');
  }
}

export async function restoreBench(reps, log) {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-'));
  const agent = await startAgent(dir);
  const senders = [];
  const rows = [];
  let stored = 0;
  let coldNs = NaN;
  try {
    for (const n of RESTORE_SIZES) {
      senders.push(await fill(agent, n - stored, FILL_NAME));
      stored = n;
      if (Number.isNaN(coldNs)) coldNs = await timed([agent.launcher, '--', APP], n);
      const ns = await atSize(agent, n, reps);
      const agentNs = median(ns.agent);
      const rawNs = median(ns.raw);
      rows.push({ fds: n, agent: { ns: ns.agent, medianNs: agentNs }, raw: { ns: ns.raw, medianNs: rawNs }, ratio: agentNs / rawNs });
      log('.');
    }
    if (agent.errors().length) throw new Error(`agent logged errors:\n${agent.errors().join('\n')}`);
    return { rows, firstRestoreAfterStartNs: coldNs };
  } finally {
    await agent.stop();
    for (const s of senders) s.release();
    for (const s of senders) await s.stop(undefined, 30_000);
    rmSync(dir, { recursive: true, force: true });
  }
}
