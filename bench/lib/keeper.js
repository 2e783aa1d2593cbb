/**
 * The keeper's cost (issue 11): storing 19,000 unix-socket fds (253 per FDSTORE=1,
 * then BARRIER=1, as the store step does) into an agent without a keeper and into
 * one with `--keeper`, alternated in the same run. With the keeper the barrier is
 * acknowledged only once the mirror has been sent, so the timed span includes it.
 * The keeper's RSS is read before and after.
 *
 * Two ratios: wall time (the sender's span; on a shared 2-core machine the third
 * process, the keeper, competes for a core, so this one moves with the load) and
 * the agent's CPU time over the same span (all its threads, from schedstat: the
 * work the mirror adds to the agent, which the load moves much less). Each is the
 * median of the ratios of adjacent pairs, so drift in the load between rounds
 * cancels out.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILD, Child, fdCount, ROOT, rssBytes, run, sleep, startAgent } from './proc.js';
import { median } from './stats.js';

export const KEEPER_FDS = 19000;
/** The aim: storing with the mirror on costs at most this much more. */
export const KEEPER_RATIO_AIM = 1.2;
const SENDER = join(BUILD, 'store-sender');
const KEEPER = join(ROOT, 'agent', 'keeper', 'fdstore-keeper');
const WARMUP = { fds: 1000, rounds: 5 };

/** Nanoseconds on a CPU of every thread of pid (/proc/PID/task/TID/schedstat, field 1). */
function cpuNs(pid) {
  let ns = 0;
  for (const t of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // a thread that ended meanwhile
    }
  }
  return ns;
}

async function startKeeper(runDir) {
  const k = new Child(KEEPER, ['--run-dir', runDir], { stderr: 'pipe' });
  await k.waitLine((l) => l.includes('keeping up to'), 10_000);
  return k;
}

async function once(withKeeper, n) {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-'));
  const runDir = join(dir, 'run');
  mkdirSync(runDir);
  const keeper = withKeeper ? await startKeeper(runDir) : null;
  const agent = await startAgent(runDir, withKeeper ? ['--keeper', join(runDir, '.keeper', 'keeper.sock')] : []);
  let sender;
  try {
    await run(SENDER, ['--name', 'warm', '--rounds', String(WARMUP.rounds), '--remove', agent.notify, String(WARMUP.fds)]);
    await sleep(100);
    const keeperRss0 = keeper ? rssBytes(keeper.pid) : 0;
    const keeperFds0 = keeper ? fdCount(keeper.pid) : 0;
    const cpu0 = cpuNs(agent.pid);
    const keeperCpu0 = keeper ? cpuNs(keeper.pid) : 0;
    sender = new Child(SENDER, ['--hold', agent.notify, String(n)], { stdin: 'pipe' });
    const report = await sender.json(120_000);
    const out = { ns: report.ns[0], cpuNs: cpuNs(agent.pid) - cpu0, keeperCpuNs: keeper ? cpuNs(keeper.pid) - keeperCpu0 : 0 };
    if (keeper) {
      const held = fdCount(keeper.pid) - keeperFds0;
      if (held !== n) throw new Error(`keeper holds ${held} more fds after the agent stored ${n}`);
      out.keeperRssBefore = keeperRss0;
      out.keeperRssAfter = rssBytes(keeper.pid);
    }
    if (agent.errors().length) throw new Error(`agent logged errors:\n${agent.errors().join('\n')}`);
    return out;
  } finally {
    await agent.stop();
    if (keeper) await keeper.stop('SIGKILL');
    sender?.release();
    await sender?.stop(undefined, 30_000);
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function keeperBench(reps, log) {
  const off = [];
  const on = [];
  for (let r = 0; r < reps; r++) {
    // Alternated, the order flipped per round: drift in machine load hits both.
    for (const withKeeper of r % 2 === 0 ? [false, true] : [true, false]) (withKeeper ? on : off).push(await once(withKeeper, KEEPER_FDS));
    log('.');
  }
  const offNs = median(off.map((x) => x.ns));
  const onNs = median(on.map((x) => x.ns));
  const paired = (f) => median(on.map((x, i) => f(x) / f(off[i])));
  return {
    fds: KEEPER_FDS,
    without: { ns: off.map((x) => x.ns), medianNs: offNs, cpuNs: off.map((x) => x.cpuNs), medianCpuNs: median(off.map((x) => x.cpuNs)) },
    with: { ns: on.map((x) => x.ns), medianNs: onNs, cpuNs: on.map((x) => x.cpuNs), medianCpuNs: median(on.map((x) => x.cpuNs)) },
    ratio: paired((x) => x.ns),
    cpuRatio: paired((x) => x.cpuNs),
    keeperCpuNs: median(on.map((x) => x.keeperCpuNs)),
    keeperRssBeforeBytes: median(on.map((x) => x.keeperRssBefore)),
    keeperRssAfterBytes: median(on.map((x) => x.keeperRssAfter)),
  };
}
