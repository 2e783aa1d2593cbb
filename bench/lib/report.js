/** Renders the results as markdown (stdout, results/latest.md) from latest.json's data. */
import { agentIdleSection, LEASE_UPDATES_PER_MIN, operatorSection } from './report-operator.js';
import { mib, ms, num, ratio, table } from './stats.js';

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

function keeperSection(k) {
  return [
    '## Keeper: storing with the mirror on (issue 11)',
    '',
    `${num(k.fds)} unix-socket fds, 253 per FDSTORE=1, then BARRIER=1, into an agent without and with`,
    '`--keeper`, alternated in the same run. With the keeper, BARRIER=1 is acknowledged',
    'only after the mirror was sent, so the span includes the extra `sendmsg` per turn.',
    'Times are medians; ratios are medians of the ratios of adjacent pairs.',
    '',
    table(['fds', 'without keeper', 'with keeper', 'with/without (wall)', 'agent CPU without', 'agent CPU with', 'with/without (agent CPU)', 'keeper CPU', 'keeper RSS before', 'keeper RSS after'], [
      [num(k.fds), ms(k.without.medianNs), ms(k.with.medianNs), ratio(k.ratio), ms(k.without.medianCpuNs), ms(k.with.medianCpuNs), ratio(k.cpuRatio), ms(k.keeperCpuNs),
        mib(k.keeperRssBeforeBytes), mib(k.keeperRssAfterBytes)],
    ]),
    '',
    '- wall: the sender\'s span from its first `sendmsg` to the barrier\'s acknowledgement. The',
    '  keeper is a third process on the 2 cores, so under load this ratio moves with the machine.',
    '- agent CPU: every thread of the agent over the same span (`/proc/PID/task/*/schedstat`);',
    '  keeper CPU: the keeper\'s over it, the kernel\'s work of taking the 19,000 fds in.',
    '- keeper RSS: VmRSS of fdstore-keeper with an empty table (after the warm-up) and holding',
    '  the 19,000 fds; the kernel\'s own cost per fd (file table entries) is not in VmRSS.',
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
  const w = res.webhook;
  if (w?.https) {
    out.push(`- Webhook: AdmissionReview over HTTPS p50 ${num(w.https.injected.p50Us)} µs / p99 ${num(w.https.injected.p99Us)} µs injected ` +
      `(bare HTTPS baseline ${num(w.https.baseline.p50Us)} / ${num(w.https.baseline.p99Us)} µs); review() alone p50 ${num(w.inProcess.injected.p50Us)} µs, p99 ${num(w.inProcess.injected.p99Us)} µs.`);
  }
  const s19 = res.store?.rows.find((r) => r.fds === 19000);
  if (s19) {
    const ok = s19.ratioToPerFd <= 1.5;
    out.push(`- Store, 19,000 fds: agent/per-fd ${ratio(s19.ratioToPerFd)} (aim ≤ 1.50×: ${ok ? 'met' : 'NOT met'}); ` +
      `${num(s19.agent.fdsPerSecond)} fds/s; ${num(s19.agent.bytesPerFd)} bytes of RSS per stored fd.`);
  }
  const k = res.keeper;
  if (k) {
    out.push(`- Keeper, ${num(k.fds)} fds: storing with the mirror ${ratio(k.ratio)} storing without in wall time (aim ≤ 1.20×: ${k.ratio <= 1.2 ? 'met' : 'NOT met'}), ` +
      `${k.cpuRatio === undefined ? 'n/a' : ratio(k.cpuRatio)} in the agent's CPU time; ` +
      `keeper RSS ${mib(k.keeperRssAfterBytes)} holding them (${mib(k.keeperRssBeforeBytes)} empty).`);
  }
  const r19 = res.restore?.rows.find((r) => r.fds === 19000);
  if (r19) out.push(`- Restore, 19,000 fds: ${ms(r19.agent.medianNs)} launcher start to first instruction, ${ratio(r19.ratio)} the raw C pair.`);
  const d = res.demo?.rows;
  if (d?.length) out.push(`- Demo: ${d.map((r) => `${r.mode}: ${r.failed} failed of ${r.requests}`).join('; ')}.`);
  const a = res.agentIdle;
  if (a) {
    out.push(`- Agent idle with \`--config\`: ${mib(a.withConfig.rssBytes.median)} RSS (${ratio(a.ratio.rss)} without), ` +
      `start ${num(a.withConfig.readyMs.median)} ms (${ratio(a.ratio.ready)}); client-node ${a.clientNode.checked ? (a.clientNode.agentOpensClientNode ? 'LOADED' : 'never opened') : 'not checked'}.`);
  }
  const o = res.operator;
  if (o?.full) {
    const f = o.full;
    const b = o.baseline;
    const api = (w) => (o.proxy ? w.proxyPerMin : w.apiPerMin);
    const lease = o.proxy ? '' : ` + ${num(LEASE_UPDATES_PER_MIN)} Lease renewals`;
    out.push(`- Operator, ${num(f.pods)} pods: API requests/min (${o.proxy ? 'all, proxy' : 'operator metric'}) ${num(api(f.idle))}${lease} idle ` +
      `(${num(api(b.idle))} at ${num(b.pods)} pods), ${num(api(f.busy))} busy (${ratio(api(f.busy) / api(b.busy))}); agent long-polls/min idle ` +
      `${num(f.idle.pollsPerMin)} (${ratio(f.idle.pollsPerMin / b.idle.pollsPerMin)}); RSS ${mib(f.idle.rssBytes.median)} ` +
      `(${ratio(f.idle.rssBytes.median / b.idle.rssBytes.median)}); every FdStore ConfigApplied after ${num(f.times.configAppliedS)} s.`);
  } else if (o) out.push(`- Operator: ${o.skipped ? `skipped (${o.skipped})` : 'failed'}.`);
  return out.length ? [...out, ''] : [];
}

/** The repetitions of the steps that ran. */
function reps(res) {
  const r = [];
  if (res.store) r.push(`${res.reps.store} repetitions per store`);
  if (res.restore) r.push(`${res.reps.restore} per restore`);
  if (res.agentIdle) r.push(`${res.agentIdle.reps} agent starts of each kind`);
  return r.length ? `${r.join(', ')} · ` : '';
}

export function markdown(res) {
  const e = res.environment;
  return [
    '# fdstore benchmark results',
    '',
    `${res.date} · ${e.cpus} CPUs (${e.cpuModel}) · Linux ${e.kernel} · Node ${e.node} · hard RLIMIT_NOFILE ${e.nofileHard} · ` +
      `load average ${e.loadBefore.join('/')} before, ${e.loadAfter.join('/')} after · ` +
      reps(res) + `${Math.round(res.seconds)} s. ` +
      'Every sample is in latest.json.',
    '',
    ...summary(res),
    ...[res.store && storeSection(res.store), res.keeper && keeperSection(res.keeper), res.restore && restoreSection(res.restore), res.demo && demoSection(res.demo), res.s6 && s6Section(res.s6),
      res.agentIdle && agentIdleSection(res.agentIdle), res.operator && operatorSection(res.operator), res.webhook && webhookSection(res.webhook)]
      .filter(Boolean)
      .flatMap((s) => [s, '']),
  ].join('\n');
}

const METHOD = `# fdstore benchmarks

Reproduce: \`npm ci && npm run bench\` (about 11 minutes on this shared 2-core
machine: the operator step 8-9 of them, agent-idle 1.5; needs gcc, python3, strace,
optionally s6, and root for the cluster). It prints this report and writes
\`bench/results/latest.json\` (every sample) and \`latest.md\`;
\`npm run bench -- --report\` also rewrites this file (a \`BENCH_ONLY\` run keeps the
other steps' results from it). \`BENCH_REPS=N\` sets the repetitions, \`BENCH_ONLY=\` a subset of
store,restore,demo,s6,agent-idle,operator,webhook. The agent-idle and operator sections below came from

    BENCH_ONLY=agent-idle,operator npm run bench -- --report

(2026-12-02T00:22:56Z, load average 5.87/7.39/8.59 before, 600 s), the webhook section from
\`BENCH_ONLY=webhook npm run bench -- --report\` (\`BENCH_WEBHOOK_N\`: reviews per kind, default 3000)

and each runs alone as \`BENCH_ONLY=agent-idle\` or \`BENCH_ONLY=operator\`
(\`BENCH_OPERATOR_PODS\`, \`_BASELINE\`, \`_WINDOW_S\`, \`_RATE\`, \`_PROXY=1\`: see
bench/lib/operator.js).

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
- **Agent idle.** \`fdstore agent --container app --container worker --http 127.0.0.1:PORT\`
  with \`--config FILE\` (the operator's rendering of a policy with defaults and two
  containers) and without, and a bare \`node -e\`, interleaved, BENCH_REPS runs each:
  start-up to the \`agent ready\` line and to the first /healthz 200, VmRSS 3 s
  later. Whether the agent loads @kubernetes/client-node is checked from outside:
  \`strace -f -e trace=openat\` over one whole agent run, with a control run that
  imports the package.
- **Operator** (needs the cluster: \`scripts/kube/up.sh\`, as root; skipped otherwise).
  A fake Node (no kubelet; cordoned, tainted, its Lease renewed) and, per size, a fresh
  namespace with N enrolled pods bound to it (Running, podIP 127.0.0.1, written through
  pods/status), an FdStorePolicy selecting them, and one process of simulated agents
  (\`sim-agents.js\`): a real agent HTTP server per pod with the real /status
  long-poll, documents from the agent's status builder, the config annotation applied
  as the kubelet and the agent would. Then one \`fdstore operator\` (admin kubeconfig;
  with BENCH_OPERATOR_PROXY=1 through a TLS proxy that counts every request, watches
  and Lease renewals included): time until every FdStore is ConfigApplied,
  then BENCH_OPERATOR_WINDOW_S (60) idle and as long with BENCH_OPERATOR_RATE (20)
  agent changes per second. 1,000 pods (BENCH_OPERATOR_PODS) against 100
  (BENCH_OPERATOR_BASELINE). The namespace and the node are deleted at the end.
- **s6-fdholder** (only when installed): 1,000 socket fds stored with one
  \`s6-fdholder-store\` process per fd (its protocol stores one fd per request), driven
  by \`s6-store.py\`; a fresh \`s6-fdholder-daemon\` per sample.

## Results of the last run
`;

/** Each step: its key in the results, how its section's heading and its summary line start. */
const STEPS = [
  { key: 'store', section: '## Store', bullet: '- Store' },
  { key: 'keeper', section: '## Keeper', bullet: '- Keeper' },
  { key: 'restore', section: '## Restore', bullet: '- Restore' },
  { key: 'demo', section: '## Demo', bullet: '- Demo' },
  { key: 's6', section: '## s6-fdholder', bullet: null },
  { key: 'agentIdle', section: '## Agent idle', bullet: '- Agent idle' },
  { key: 'operator', section: '## Operator', bullet: '- Operator' },
  { key: 'webhook', section: '## Webhook', bullet: '- Webhook' },
];
const RESULTS = '## Results of the last run\n';

/** The results part of a report: header paragraph, summary lines, sections. */
function parts(text) {
  const [head, ...sections] = text.split(/^(?=## )/m);
  const paras = head.trim().split(/\n\n/);
  const bullets = paras.join('\n').split('\n').filter((l) => l.startsWith('- '));
  const header = paras.filter((x) => !x.startsWith('- ')).join('\n\n');
  return { header, bullets, sections: sections.map((x) => x.trimEnd()) };
}

/**
 * bench/REPORT.md: the method, then the results of this run. With `previous` (the
 * committed report, for a BENCH_ONLY run), the steps not run keep their summary line
 * and section from it, and the header says so.
 */
export function reportFile(res, previous) {
  const fresh = markdown(res).replace(/^# .*\n\n/, '');
  if (!previous?.includes(RESULTS)) return METHOD + '\n' + fresh;
  const now = parts(fresh);
  const old = parts(previous.split(RESULTS)[1]);
  const kept = STEPS.filter((st) => res[st.key] === undefined && old.sections.some((x) => x.startsWith(st.section)));
  const pick = (list, prefix, key) => (res[key] !== undefined ? now : old)[list].find((x) => x.startsWith(prefix));
  const bullets = STEPS.filter((st) => st.bullet).map((st) => pick('bullets', st.bullet, st.key)).filter(Boolean);
  const sections = STEPS.map((st) => pick('sections', st.section, st.key)).filter(Boolean);
  // A report that kept sections itself passes on where they came from.
  const origin = old.header.match(/whose header read: (.*)$/s)?.[1] ?? old.header;
  const header = kept.length === 0 ? now.header
    : `${now.header}\n\nNot run this time (BENCH_ONLY): ${kept.map((st) => st.key).join(', ')}; their lines and sections are kept from the ` +
      `report before, whose header read: ${origin}`;
  return [METHOD, header, '', ...bullets, '', ...sections.flatMap((x) => [x, '']), ''].join('\n').replace(/\n{3,}/g, '\n\n');
}

function webhookSection(w) {
  if (w.error) return `## Webhook: AdmissionReview handling\n\nfailed: ${w.error}`;
  const row = (what, x, b) => [what, `${num(x.p50Us)} µs`, `${num(x.p99Us)} µs`, b ? ratio(x.p50Us / b.p50Us) : ''];
  return [
    '## Webhook: AdmissionReview handling (p50/p99)',
    '',
    `${num(w.n)} reviews of each kind, interleaved; a Deployment's pod (2 containers, an init container, ${num(w.bodyBytes)} bytes) ` +
      `among ${w.policies} policies of its namespace. Over HTTPS: one keep-alive connection on loopback, as the API server holds one; ` +
      'the baseline is a bare node:https server that reads the body and answers a fixed response. In process: review() alone; ' +
      'its baseline is JSON.parse + JSON.stringify of the same review.',
    '',
    table(['', 'p50', 'p99', 'p50 / baseline'], [
      row(`HTTPS: injected (a patch of ${w.ops} operations)`, w.https.injected, w.https.baseline),
      row('HTTPS: not selected (no patch)', w.https.skipped, w.https.baseline),
      row('HTTPS: baseline (bare server)', w.https.baseline),
      row('in process: review(), injected', w.inProcess.injected, w.inProcess.baseline),
      row('in process: review(), not selected', w.inProcess.skipped, w.inProcess.baseline),
      row('in process: baseline (parse + stringify)', w.inProcess.baseline),
    ]),
  ].join('\n');
}
