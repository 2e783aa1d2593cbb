/**
 * `npm run bench`: builds the C helpers, then measures the store, restores and the
 * demo, each next to its baseline in the same run (the machines are noisy: compare
 * ratios, not absolute numbers across runs). Prints a report and writes
 * bench/results/latest.json and latest.md.
 *
 *   BENCH_REPS=N    repetitions of each store measurement (default 7; restores, which
 *                   are cheaper and noisier, get 3N); medians are reported
 *   BENCH_ONLY=...  comma-separated subset of store,keeper,restore,demo,s6,agent-idle,operator,webhook
 *   BENCH_WEBHOOK_N=N  AdmissionReviews per kind in the webhook step (default 3000)
 *   BENCH_OPERATOR_PODS=N  enrolled pods of the operator step (default 1000; its
 *                   baseline is 100 pods in the same run)
 *   --report        also rewrite bench/REPORT.md (the committed report)
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { agentIdleBench } from './lib/agent-idle.js';
import { demoBench } from './lib/demo.js';
import { operatorBench } from './lib/operator.js';
import { killAll, ROOT } from './lib/proc.js';
import { markdown, reportFile } from './lib/report.js';
import { restoreBench } from './lib/restore.js';
import { s6Bench } from './lib/s6.js';
import { storeBench } from './lib/store.js';
import { webhookBench } from './lib/webhook.js';
import { keeperBench } from './lib/keeper.js';

const REPS = Number(process.env.BENCH_REPS ?? 7);
const RESTORE_REPS = 3 * REPS;
const ONLY = new Set((process.env.BENCH_ONLY ?? 'store,keeper,restore,demo,s6,agent-idle,operator,webhook').split(','));

function say(s) {
  process.stderr.write(s);
}

function environment() {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const nofile = /^Max open files\s+\S+\s+(\S+)/m.exec(limits);
  return {
    node: process.version,
    kernel: release(),
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    nofileHard: nofile ? nofile[1] : 'unknown',
    loadBefore: loadavg().map((x) => x.toFixed(2)),
  };
}

async function step(name, fn) {
  if (!ONLY.has(name)) return undefined;
  say(`${name} `);
  const t = Date.now();
  const r = await fn();
  say(` ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  return r;
}

async function main() {
  const started = Date.now();
  say('building bench/.build ... ');
  execFileSync('make', ['-s', '-C', join(ROOT, 'bench')], { stdio: ['ignore', 'ignore', 'inherit'] });
  say('ok\n');
  const res = { date: new Date().toISOString(), reps: { store: REPS, restore: RESTORE_REPS }, environment: environment() };
  res.store = await step('store', () => storeBench(REPS, say));
  res.keeper = await step('keeper', () => keeperBench(REPS, say));
  res.restore = await step('restore', () => restoreBench(RESTORE_REPS, say));
  res.demo = await step('demo', () => demoBench().catch((e) => ({ error: e.message })));
  const agent1000 = res.store?.rows.find((r) => r.fds === 1000)?.agent.medianNs;
  res.s6 = await step('s6', () => s6Bench(REPS, agent1000).catch((e) => ({ skipped: `failed: ${e.message}` })));
  res.agentIdle = await step('agent-idle', () => agentIdleBench(REPS, say));
  res.operator = await step('operator', () => operatorBench(say).catch((e) => ({ error: e.stack ?? e.message })));
  res.webhook = await step('webhook', () => webhookBench(say).catch((e) => ({ error: e.stack ?? e.message })));
  res.environment.loadAfter = loadavg().map((x) => x.toFixed(2));
  res.seconds = (Date.now() - started) / 1000;

  const dir = join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'latest.json'), JSON.stringify(res, null, 2) + '\n');
  const md = markdown(res);
  writeFileSync(join(dir, 'latest.md'), md);
  process.stdout.write('\n' + md);
  const written = ['bench/results/latest.json', 'bench/results/latest.md'];
  if (process.argv.includes('--report')) {
    // A BENCH_ONLY run keeps the other steps' results from the committed report.
    const file = join(ROOT, 'bench', 'REPORT.md');
    const previous = process.env.BENCH_ONLY ? readFileSync(file, 'utf8') : undefined;
    writeFileSync(file, reportFile(res, previous));
    written.push('bench/REPORT.md');
  }
  say(`\nwritten: ${written.join(', ')}\n`);
}

main().catch((e) => {
  killAll();
  say(`\nbenchmark failed: ${e.stack ?? e}\n`);
  process.exitCode = 1;
});
