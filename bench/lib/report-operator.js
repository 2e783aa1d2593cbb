/** The agent-idle and operator sections of the report (from latest.json's data). */
import { LEASE_RENEW_INTERVAL_MS } from '../../dist/operator/kube/lease.js';
import { WATCH_RELIST_MS, WATCH_TIMEOUT_MIN_SECONDS } from '../../dist/operator/kube/watch.js';
import { mib, num, ratio, sec, table } from './stats.js';

/** Lease renewals per minute: requests the operator makes whatever the pod count, not in its metric. */
export const LEASE_UPDATES_PER_MIN = 60_000 / LEASE_RENEW_INTERVAL_MS;

const msS = (ms) => (Number.isFinite(ms) ? `${num(ms)} ms` : 'n/a');

export function agentIdleSection(a) {
  const w = a.withConfig;
  const f = a.withoutConfig;
  const b = a.bareNode;
  const rows = [
    [`\`--config FILE\` (${a.configBytes} bytes)`, msS(w.readyMs.median), msS(w.healthzMs.median), mib(w.rssBytes.median)],
    ['flags only (same containers)', msS(f.readyMs.median), msS(f.healthzMs.median), mib(f.rssBytes.median)],
    ['with / without', ratio(a.ratio.ready), ratio(a.ratio.healthz), ratio(a.ratio.rss)],
    ['bare `node -e` (the floor)', msS(b.readyMs.median), '', mib(b.rssBytes.median)],
  ];
  const c = a.clientNode;
  const check = !c.checked
    ? `- @kubernetes/client-node: not checked (${c.why}).`
    : `- @kubernetes/client-node: \`strace -f -e trace=openat\` over a whole agent run with the file (start, /healthz, /status, ` +
      `/metrics, SIGTERM): ${num(c.agentFilesOpened)} files opened, **${c.agentOpensClientNode ? 'client-node among them' : 'none of client-node'}**; ` +
      `the packages it opened: ${c.agentPackages.join(', ')}. Control: the same trace of \`import('@kubernetes/client-node')\` ` +
      `${c.controlOpensClientNode ? `shows ${num(c.controlClientNodeFiles)} of its files` : 'DID NOT show it (the check is void)'}.`;
  return [
    '## Agent idle: start-up and RSS with `--config` (the sidecar must not grow)',
    '',
    `Medians of ${a.reps} runs each, interleaved: \`fdstore agent --container app --container worker --http 127.0.0.1:PORT\`, ` +
      'with and without `--config FILE`. Start: spawn to the `agent ready` log line (written once /healthz serves), and spawn to the first ' +
      `200 of /healthz (polled every 5 ms). Idle RSS: VmRSS ${a.settleMs / 1000} s after start. Each sample checks /status: the agent runs the ` +
      "file's sha256 (or no file).",
    '',
    table(['agent', "start ('agent ready')", 'start (/healthz 200)', 'idle RSS'], rows),
    '',
    `- Issue 8's figures to keep: ~60 MB idle, ~0.15 s start (a quieter machine). Here \`--config\` costs ` +
      `${num((w.rssBytes.median - f.rssBytes.median) / 1048576)} MiB and ${num(w.readyMs.median - f.readyMs.median)} ms (medians, noise included); ` +
      `the agent is ${mib(w.rssBytes.median - b.rssBytes.median)} above bare node, and bare node's own start (${msS(b.readyMs.median)}) shows this machine's load.`,
    `- The file is what the operator writes into the pod's annotation for a policy with \`defaults\` and two containers: \`${a.configText}\``,
    check,
  ].join('\n');
}

/** "verb resource" keys of both sizes, biggest first. */
function keys(...objs) {
  const all = new Map();
  for (const o of objs) for (const [k, v] of Object.entries(o ?? {})) all.set(k, (all.get(k) ?? 0) + v);
  return [...all.entries()].sort((x, y) => y[1] - x[1]).map(([k]) => k);
}

function steadyRows(o) {
  const b = o.baseline;
  const f = o.full;
  const row = (label, get, fmt = num) => {
    const cells = [];
    for (const w of ['idle', 'busy']) {
      const x = get(b[w]);
      const y = get(f[w]);
      cells.push(fmt(x), fmt(y), ratio(y / x));
    }
    return [label, ...cells];
  };
  const rows = [row('API requests/min (operator metric)', (w) => w.apiPerMin)];
  const counted = keys(b.idle.api, b.busy.api, f.idle.api, f.busy.api);
  for (const k of counted) rows.push(row(`  ${k}`, (w) => w.api[k] ?? 0));
  if (o.proxy) {
    rows.push(row('API requests/min, all (proxy)', (w) => w.proxyPerMin));
    // What the metric does not count: watches, lists, Lease renewals.
    for (const k of keys(b.idle.proxy, b.busy.proxy, f.idle.proxy, f.busy.proxy).filter((x) => !counted.includes(x))) {
      rows.push(row(`  ${k} (not in the metric)`, (w) => w.proxy[k] ?? 0));
    }
    rows.push(row('  new TLS connections/min', (w) => w.connectionsPerMin));
  }
  rows.push(
    row('agent long-polls/min (operator)', (w) => w.pollsPerMin),
    row('/status answered/min (agents)', (w) => w.agentRequestsPerMin),
    row('Events/min', (w) => Object.values(w.events).reduce((s, v) => s + v, 0)),
    row('reconciles/min', (w) => w.reconcilesPerMin),
    row('work queue depth, median (keys)', (w) => w.queueDepth.median),
    row('work queue depth, max (keys)', (w) => w.queueDepth.max),
    row('operator RSS (median)', (w) => w.rssBytes.median, mib),
    row('operator JS heap used (end)', (w) => w.heapUsedBytes, mib),
    row('operator CPU', (w) => w.cpuPercent, (x) => (Number.isFinite(x) ? `${num(x)} %` : 'n/a')),
    row('API server RSS (shared)', (w) => w.apiserverRssBytes, mib),
  );
  return rows;
}

export function operatorSection(o) {
  const head = `## Operator: ${num(o.pods ?? 1000)} enrolled pods against ${num(o.baselinePods ?? 100)}, simulated agents`;
  if (o.skipped) return `${head}\n\nSkipped: ${o.skipped}`;
  if (o.error) return `${head}\n\nFailed: ${o.error}`;
  const b = o.baseline;
  const f = o.full;
  const start = (label, get, fmt = (x) => sec(x * 1000)) => [label, fmt(get(b)), fmt(get(f)), ratio(get(f) / get(b))];
  const perPodRss = (f.idle.rssBytes.median - b.idle.rssBytes.median) / (f.pods - b.pods);
  const load = (p) => `${p.loadavg.before.map((x) => x.toFixed(1)).join('/')} → ${p.loadavg.after.map((x) => x.toFixed(1)).join('/')}`;
  return [
    head,
    '',
    'One `fdstore operator` per size, started once the pods exist (so it lists them all at start); times are from its spawn. ' +
      `${o.proxy ? 'Its kubeconfig goes through a counting proxy. ' : ''}Ratios are ${num(f.pods)} pods / ${num(b.pods)} pods.`,
    '',
    table(['start-up', `${num(b.pods)} pods`, `${num(f.pods)} pods`, 'ratio'], [
      start('pods created and Running (the bench, not the operator)', (p) => p.createPodsS),
      start('operator leads (started, caches synced, Lease taken)', (p) => p.times.leadingS),
      start('every pod annotated (seen by the simulated kubelet)', (p) => p.times.annotatedS),
      start('every FdStore exists', (p) => p.times.fdstoresS),
      start('every agent runs the config (simulated)', (p) => p.times.agentsAppliedS),
      start('every FdStore ConfigApplied=True', (p) => p.times.configAppliedS),
      start('operator RSS then', (p) => p.rssAfterStartBytes, mib),
      start('operator CPU until then (100 % = one core)', (p) => p.startCpuPercent, (x) => `${num(x)} %`),
    ]),
    '',
    `Steady state: ${o.windowS} s idle, then ${o.windowS} s with ${o.rate} agent state changes per second ` +
      `(made: ${num(b.busy.changesPerSecond)}/s and ${num(f.busy.changesPerSecond)}/s), half of them a container restore, half an fd stored or closed.`,
    '',
    table(['per minute unless said', `idle ${num(b.pods)}`, `idle ${num(f.pods)}`, 'ratio', `busy ${num(b.pods)}`, `busy ${num(f.pods)}`, 'ratio'], steadyRows(o)),
    '',
    o.proxy ? '- All requests counted by the TLS proxy in front of the API server (BENCH_OPERATOR_PROXY=1); the extra hop makes each request slower.'
      : `- Not in the metric: the Lease renewal (one \`update leases\` per ${LEASE_RENEW_INTERVAL_MS / 1000} s: ${num(LEASE_UPDATES_PER_MIN)}/min) ` +
        `and the two watches (pods, policies), re-opened every ${WATCH_TIMEOUT_MIN_SECONDS / 60}-${(2 * WATCH_TIMEOUT_MIN_SECONDS) / 60} min and ` +
        `relisted every ${WATCH_RELIST_MS / 60_000} min, at any pod count; \`BENCH_OPERATOR_PROXY=1\` counts them through a TLS proxy.`,
    '- Work queue depth: keys waiting plus keys held back by the 2 s status write interval, sampled every 5 s; ' +
      'every RESYNC_MS (60 s) all pods are queued once, which is the max in a window that catches it.',
    `- Operator memory: JS heap used is ${mib(f.idle.heapUsedBytes)} of the ${mib(f.idle.rssBytes.median)} idle RSS at ${num(f.pods)} pods, ` +
      `which stays near its start-up peak (${mib(f.rssAfterStartBytes)}).`,
    `- Operator RSS per pod: (idle RSS at ${num(f.pods)} − at ${num(b.pods)}) / ${num(f.pods - b.pods)} = ${num(perPodRss / 1024)} KiB.`,
    `- API server RSS ${mib(o.apiserverRssBefore)} before the step, ${mib(o.apiserverRssAfter)} after (it serves every test on this machine).`,
    `- API errors: ${[b, f].map((p) => `${p.idle.apiErrors + p.busy.apiErrors} at ${num(p.pods)} pods`).join(', ')}; ` +
      `operator warnings: ${b.operatorWarningCount} and ${f.operatorWarningCount}.` +
      ([b, f].every((p) => p.settled) ? '' : ' NOT every FdStore reached ConfigApplied within the deadline: see latest.json.'),
    `- Each size took ${num(b.phaseS)} s and ${num(f.phaseS)} s (pods, start-up, both windows, cleanup).`,
    `- Load average (1/5/15 min) over the windows: ${load(b)} at ${num(b.pods)} pods, ${load(f)} at ${num(f.pods)}.`,
    `- Simulated kubelet: the config file follows an annotation after U(0, ${o.kubeletDelayMs / 1000} s) (this cluster's kubelet sync period) ` +
      `plus U(0, ${o.configPollMs / 1000} s) (the agent's --config-poll); the start-up times include it.`,
  ].join('\n');
}
