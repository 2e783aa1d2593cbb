/**
 * Store throughput: N unix-socket fds, 253 per FDSTORE=1 datagram, confirmed by a
 * BARRIER=1, into the agent and into two raw C receivers, in the same run.
 * store-sender times only its sendmsg loop and the barrier's acknowledgement.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BUILD, Child, fdCount, rssBytes, run, sleep, startAgent } from './proc.js';
import { median } from './stats.js';

export const STORE_SIZES = [1000, 10000, 19000];
export const TARGETS = ['agent', 'raw-recvmsg', 'raw-perfd'];

const SENDER = join(BUILD, 'store-sender');
/** Untimed warm-up of the agent (JIT, allocator): rounds of store + FDSTOREREMOVE. */
const WARMUP = { fds: 1000, rounds: 5 };

/** Starts store-sender --hold for n fds; resolves with it and its report. */
async function send(notify, n) {
  const sender = new Child(SENDER, ['--hold', notify, String(n)], { stdin: 'pipe' });
  const report = await sender.json(120_000);
  return { sender, ns: report.ns[0] };
}

async function agentOnce(dir, n) {
  const agent = await startAgent(dir);
  let sender;
  try {
    const warm = await run(SENDER, ['--name', 'warm', '--rounds', String(WARMUP.rounds), '--remove', agent.notify, String(WARMUP.fds)]);
    const coldNs = JSON.parse(warm.find((l) => l.startsWith('{'))).ns[0];
    await sleep(100);
    const rss0 = rssBytes(agent.pid);
    const fds0 = fdCount(agent.pid);
    const r = await send(agent.notify, n);
    sender = r.sender;
    const rss1 = rssBytes(agent.pid);
    const stored = fdCount(agent.pid) - fds0;
    if (stored !== n) throw new Error(`agent holds ${stored} more fds after storing ${n}`);
    if (agent.errors().length) throw new Error(`agent logged errors:\n${agent.errors().join('\n')}`);
    return { ns: r.ns, coldNs, rssDelta: rss1 - rss0, rssBefore: rss0, rssAfter: rss1 };
  } finally {
    // The agent goes first: its stored ends must not see the peers hang up.
    await agent.stop();
    sender?.release();
    await sender?.stop(undefined, 30_000);
  }
}

async function rawOnce(dir, n, mode) {
  const notify = join(dir, 'notify');
  const receiver = new Child(join(BUILD, 'raw-receiver'), [mode, notify]);
  let sender;
  try {
    await receiver.waitLine((l) => l === 'ready', 5_000);
    const fds0 = fdCount(receiver.pid);
    const r = await send(notify, n);
    sender = r.sender;
    const stored = fdCount(receiver.pid) - fds0;
    if (stored !== n) throw new Error(`raw-receiver ${mode} holds ${stored} more fds after storing ${n}`);
    return { ns: r.ns };
  } finally {
    await receiver.stop('SIGKILL');
    sender?.release();
    await sender?.stop(undefined, 30_000);
  }
}

async function once(target, n) {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-'));
  try {
    return target === 'agent' ? await agentOnce(dir, n) : await rawOnce(dir, n, target.slice(4));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * reps rounds; in each, every (size, target) once, the target order rotated per
 * round so slow drift in machine load spreads over all of them.
 */
export async function storeBench(reps, log) {
  const samples = {};
  for (const n of STORE_SIZES) for (const t of TARGETS) samples[`${t}/${n}`] = [];
  for (let r = 0; r < reps; r++) {
    for (const n of STORE_SIZES) {
      for (let i = 0; i < TARGETS.length; i++) {
        const t = TARGETS[(i + r) % TARGETS.length];
        samples[`${t}/${n}`].push(await once(t, n));
      }
      log('.');
    }
  }
  const cold = STORE_SIZES.flatMap((n) => samples[`agent/${n}`].map((x) => x.coldNs));
  return { rows: STORE_SIZES.map((n) => summarize(n, samples)), coldFirst1000: { fds: WARMUP.fds, ns: cold, medianNs: median(cold) } };
}

function summarize(n, samples) {
  const row = { fds: n };
  for (const t of TARGETS) {
    const s = samples[`${t}/${n}`];
    const ns = s.map((x) => x.ns);
    row[t] = { ns, medianNs: median(ns), fdsPerSecond: n / (median(ns) / 1e9) };
  }
  const a = samples[`agent/${n}`];
  row.agent.rssDeltaBytes = a.map((x) => x.rssDelta);
  row.agent.bytesPerFd = median(a.map((x) => x.rssDelta)) / n;
  row.agent.rssBeforeBytes = median(a.map((x) => x.rssBefore));
  row.ratioToRecvmsg = row.agent.medianNs / row['raw-recvmsg'].medianNs;
  row.ratioToPerFd = row.agent.medianNs / row['raw-perfd'].medianNs;
  return row;
}
