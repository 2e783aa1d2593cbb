/** Renders the results as markdown (stdout, results/latest.md) from latest.json's data. */
import { ms, num, ratio, table } from './stats.js';

function storeSection(store) {
  const rows = store.rows.map((r) => [
    num(r.fds),
    ms(r.agent.medianNs),
    ms(r['raw-recvmsg'].medianNs),
    ms(r['raw-perfd'].medianNs),
    num(r.agent.fdsPerSecond),
    num(r['raw-recvmsg'].fdsPerSecond),
    num(r['raw-perfd'].fdsPerSecond),
    ratio(r.ratioToRecvmsg),
    ratio(r.ratioToPerFd),
    num(r.agent.bytesPerFd),
  ]);
  return [
    '## Store: N unix-socket fds, 253 per FDSTORE=1 datagram, then BARRIER=1',
    '',
    'Time from the first `sendmsg` to the barrier\'s acknowledgement (medians). Ratios are',
    'agent time / raw time: 1.00× is the raw receiver\'s speed, higher is slower.',
    '',
    table(
      ['fds', 'agent', 'raw recvmsg', 'raw per-fd', 'agent fds/s', 'recvmsg fds/s', 'per-fd fds/s', 'agent/recvmsg', 'agent/per-fd', 'agent RSS B/fd'],
      rows,
    ),
    '',
    '- raw recvmsg: `recvmsg` only (fds kept). raw per-fd: `recvmsg`, then `fstat` and',
    '  `epoll_ctl(ADD, events 0)` per fd. Both bind like the agent (SO_PASSCRED, 8 MiB buffer,',
    '  MSG_CMSG_CLOEXEC). The agent also dedupes every fd (F_DUPFD_QUERY) and logs.',
    `- A cold agent (the first ${num(store.coldFirst1000.fds)} fds after it started, before any warm-up) took ${ms(store.coldFirst1000.medianNs)}; ` +
      'the timed runs follow 5 untimed rounds of storing and removing 1,000 fds.',
    '- agent RSS B/fd: (VmRSS after storing − VmRSS before) / N, median; includes garbage',
    '  not yet collected, and at 1,000 fds mostly heap-growth granularity.',
  ].join('\n');
}

function restoreSection(restore) {
  const rows = restore.rows.map((r) => [num(r.fds), ms(r.agent.medianNs), ms(r.raw.medianNs), ratio(r.ratio)]);
  return [
    '## Restore: launcher start to the app\'s first instruction',
    '',
    'Medians. Both paths are spawned by the same C program (`spawn-time`, clock read just',
    'before `posix_spawn`) and exec the same static app (`first-instr`, clock read at',
    'the top of `main`).',
    '',
    table(['fds', 'agent + fdstore-exec', 'raw C pair', 'agent/raw'], rows),
    '',
    `- First restore after the agent started (1 fd, cold): ${ms(restore.firstRestoreAfterStartNs)}; not in the medians.`,
    '- raw C pair: a server already holding N socket fds sends them 253 per message over',
    '  SOCK_SEQPACKET to `restore-baseline --receive`, which places them at 3.. and execs',
    '  (no names, no header, no peer check, no MSG_CMSG_CLOEXEC to undo).',
    '- The store is filled with FDNAME=b: with the default name `stored`, LISTEN_FDNAMES for',
    '  19,000 fds is 133,000 bytes, over Linux\'s 131,072-byte limit for one environment',
    '  string, and fdstore-exec exits 126 (E2BIG). At most 18,724 default-named fds can be',
    '  restored.',
  ].join('\n');
}

function demoSection(demo) {
  if (demo.error) return `## Demo\n\nFailed: ${demo.error}`;
  const rows = demo.rows.map((r) => demo.columns.map((c) => r[c]));
  return ['## Demo: failed requests over restarts under load (`npm run demo`)', '', table(demo.columns, rows), '', `Demo exit code ${demo.exitCode}: ${demo.verdict}`].join('\n');
}

function s6Section(s6) {
  if (s6.skipped) return `## s6-fdholder (1,000 fds, one per request)\n\nSkipped: ${s6.skipped}`;
  return [
    '## s6-fdholder: store 1,000 unix-socket fds, one `s6-fdholder-store` per fd',
    '',
    table(['fds', 's6-fdholder', 'agent (same run)', 's6/agent'], [[num(s6.fds), ms(s6.medianNs), ms(s6.agentNs), ratio(s6.medianNs / s6.agentNs)]]),
  ].join('\n');
}

/** The issues' aims, checked against this run. */
function summary(res) {
  const out = [];
  const s19 = res.store?.rows.find((r) => r.fds === 19000);
  if (s19) {
    const ok = s19.ratioToPerFd <= 1.5;
    out.push(`- Store, 19,000 fds: agent/per-fd ${ratio(s19.ratioToPerFd)} (aim ≤ 1.50×: ${ok ? 'met' : 'NOT met'}); ` +
      `${num(s19.agent.fdsPerSecond)} fds/s; ${num(s19.agent.bytesPerFd)} bytes of RSS per stored fd.`);
  }
  const r19 = res.restore?.rows.find((r) => r.fds === 19000);
  if (r19) out.push(`- Restore, 19,000 fds: ${ms(r19.agent.medianNs)} launcher start to first instruction, ${ratio(r19.ratio)} the raw C pair.`);
  const d = res.demo?.rows;
  if (d?.length) out.push(`- Demo: ${d.map((r) => `${r.mode}: ${r.failed} failed of ${r.requests}`).join('; ')}.`);
  return out.length ? [...out, ''] : [];
}

export function markdown(res) {
  const e = res.environment;
  return [
    '# fdstore benchmark results',
    '',
    `${res.date} · ${e.cpus} CPUs (${e.cpuModel}) · Linux ${e.kernel} · Node ${e.node} · hard RLIMIT_NOFILE ${e.nofileHard} · ` +
      `load average ${e.loadBefore.join('/')} before, ${e.loadAfter.join('/')} after · ` +
      `${res.reps.store} repetitions per store, ${res.reps.restore} per restore · ${Math.round(res.seconds)} s. ` +
      'Every sample is in latest.json.',
    '',
    ...summary(res),
    ...[res.store && storeSection(res.store), res.restore && restoreSection(res.restore), res.demo && demoSection(res.demo), res.s6 && s6Section(res.s6)]
      .filter(Boolean)
      .flatMap((s) => [s, '']),
  ].join('\n');
}

const METHOD = `# fdstore benchmarks

Reproduce: \`npm ci && npm run bench\` (about a minute; needs gcc, python3, and
optionally s6). It prints this report and writes \`bench/results/latest.json\` (every
sample) and \`latest.md\`; \`npm run bench -- --report\` also rewrites this file.
\`BENCH_REPS=N\` sets the repetitions, \`BENCH_ONLY=store,restore,demo,s6\` a subset.

## Method

- Every measurement runs next to its baseline in the same run, interleaved, and is
  reported as a median and as a ratio. The machines have 2 cores and are shared (tests
  run beside the benchmark; the load average is in the header): compare ratios from
  one run, not absolute times across runs.
- **Store.** \`store-sender\` (C) pushes N unix-socket fds, 253 per datagram with
  \`FDSTORE=1\`, then \`BARRIER=1\` with a pipe's write end, and times from the first
  \`sendmsg\` to \`POLLHUP\` on the read end. Each fd is one end of a socketpair whose
  peer must stay open (a hang-up would drop it from the store); the hard
  \`RLIMIT_NOFILE\` of 20,000 cannot hold both ends of 19,000 pairs, so the peers live
  in a forked holder process. Targets: the agent as a pod runs it (\`fdstore agent
  --run-dir DIR --container bench --fd-store-max 19000 --listen off\`, a fresh one per
  sample, warmed by 5 untimed rounds of storing and removing 1,000 fds), and
  \`raw-receiver\` (C) in two modes. The agent's memory per fd is its VmRSS after the
  store minus before, over N; each sample is also checked: the receiver holds exactly
  N more fds.
- **Restore.** One agent is filled to 1, 1,000, 10,000 and 19,000 socket fds. At each
  size \`spawn-time\` (C) reads CLOCK_MONOTONIC, \`posix_spawn\`s
  \`DIR/bench/fdstore-exec -- first-instr\`, and \`first-instr\` (static C) reads the
  clock first thing in \`main\` and checks \`LISTEN_FDS\` and that the last fd sits at
  3+N−1 without \`FD_CLOEXEC\`. The baseline is the same spawner and app around
  \`restore-baseline --receive\`, fed by \`restore-baseline --serve\` holding N socket
  fds. One untimed restore per size and path first; the paths alternate.
- **Demo.** \`node dist/demo/main.js\` (what \`npm run demo\` runs), its table as printed.
- **s6-fdholder** (only when installed): 1,000 socket fds stored with one
  \`s6-fdholder-store\` process per fd (its protocol stores one fd per request), driven
  by \`s6-store.py\`; a fresh \`s6-fdholder-daemon\` per sample.

## Results of the last run
`;

/** bench/REPORT.md: the method, then the results of this run. */
export function reportFile(res) {
  return METHOD + '\n' + markdown(res).replace(/^# .*\n\n/, '');
}
