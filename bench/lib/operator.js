/**
 * The operator at scale: ONE `fdstore operator` following N enrolled pods (pods as
 * API objects bound to a fake node, agents simulated by sim-agents.js, the way kwok
 * simulates kubelets), against a baseline of 100 pods in the same run. Measured per
 * size: the time until every FdStore exists and says ConfigApplied; then 60 s idle
 * and 60 s with K agents changing state per second: the operator's API requests per
 * minute (its own fdstore_operator_api_requests_total, by verb, and every request
 * including watches and Lease renewals, counted by a proxy in front of the API
 * server), agent long-polls per minute, the operator's RSS and CPU, and the API
 * server's RSS. Skipped, saying why, when scripts/kube/up.sh cannot bring the
 * cluster up. Everything it creates is deleted at the end, also on failure.
 *
 *   BENCH_OPERATOR_PODS=N       pods (default 1000)
 *   BENCH_OPERATOR_BASELINE=N   pods of the baseline (default 100)
 *   BENCH_OPERATOR_WINDOW_S=S   length of the idle and the busy window (default 60)
 *   BENCH_OPERATOR_RATE=K       agent state changes per second in the busy window (default 20)
 *   BENCH_OPERATOR_PROXY=1      count every API request (watches, Lease renewals too) through a
 *                               TLS proxy; off by default: the extra hop slows each request
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { get } from 'node:http';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { CountingProxy } from './api-proxy.js';
import { Cluster, clusterEnv } from './kube.js';
import { benchPolicy } from './policy.js';
import { Child, ROOT, rssBytes, sleep } from './proc.js';
import { median } from './stats.js';
import { performance } from 'node:perf_hooks';

const PODS = Number(process.env.BENCH_OPERATOR_PODS ?? 1000);
export const BASELINE_PODS = Number(process.env.BENCH_OPERATOR_BASELINE ?? 100);
const WINDOW_S = Number(process.env.BENCH_OPERATOR_WINDOW_S ?? 60);
const RATE = Number(process.env.BENCH_OPERATOR_RATE ?? 20);
const PROXY = process.env.BENCH_OPERATOR_PROXY === '1';
/** The kubelet's sync period on this cluster (env.sh KUBE_SYNC_FREQUENCY) and the agent's default --config-poll. */
export const KUBELET_SYNC_MS = 5_000;
export const CONFIG_POLL_MS = 5_000;
const LABELS = { app: 'bench' };
const RSS_SAMPLE_MS = 5_000;
/** Generous: two busy cores, a shared API server. A miss is reported, not fatal. */
const SETTLE_DEADLINE_MS = 240_000;
const CLK_TCK = 100;

/** Prometheus text -> [{ name, labels, value }]. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{([^}]*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels = Object.fromEntries([...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]));
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** Sums of one metric grouped by the joined values of `by` labels. */
function grouped(metrics, name, by) {
  const out = {};
  for (const s of metrics.filter((x) => x.name === name)) {
    const k = by.map((l) => s.labels[l]).join(' ');
    out[k] = (out[k] ?? 0) + s.value;
  }
  return out;
}

function cpuSeconds(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / CLK_TCK;
}

/** Per minute, key by key, between two snapshots of counters. */
function rates(before, after, minutes) {
  const out = {};
  for (const [k, v] of Object.entries(after)) {
    const d = v - (before[k] ?? 0);
    if (d !== 0) out[k] = d / minutes;
  }
  return out;
}

const total = (o) => Object.values(o).reduce((a, b) => a + b, 0);

async function waitFor(fn, timeoutMs, what) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(250);
  }
}

function getText(url) {
  return new Promise((resolve, reject) => {
    const req = get(url, { timeout: 10_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`GET ${url}: HTTP ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url}: no answer in 10 s`)));
    req.on('error', reject);
  });
}

class Sim {
  constructor(opts) {
    this.child = new Child(process.execPath, [join(ROOT, 'bench', 'lib', 'sim-agents.js'), JSON.stringify(opts)], { stdin: 'pipe', stderr: 'pipe' });
  }

  async ports() {
    return (await this.child.json(120_000)).ports;
  }

  send(m) {
    this.child.proc.stdin.write(`${JSON.stringify(m)}\n`);
  }

  async stats() {
    const from = this.child.lines.length;
    this.send({ stats: true });
    return JSON.parse(await this.child.waitLine((l) => l.startsWith('{"stats"'), 30_000, from)).stats;
  }

  event(name, timeoutMs) {
    return this.child.waitLine((l) => l === `{"event":"${name}"}`, timeoutMs);
  }

  async stop() {
    this.child.release();
    await this.child.stop(undefined, 10_000).catch(() => this.child.kill('SIGKILL'));
  }
}

class Operator {
  constructor(kubeconfig, ns) {
    this.child = new Child(process.execPath, [join(ROOT, 'bin', 'fdstore.js'), 'operator', '--kubeconfig', kubeconfig, '--namespace', ns,
      '--lease-namespace', ns, '--http', '127.0.0.1:0'], { stderr: 'pipe' });
    this.pid = this.child.pid;
  }

  url() {
    this.base ??= this.child.waitLine((l) => l.includes('"http listening"'), 60_000).then((line) => `http://${JSON.parse(line).address}`);
    return this.base;
  }

  async metrics() {
    return parseMetrics(await getText(`${await this.url()}/metrics`));
  }

  errors() {
    return this.child.lines.filter((l) => l.includes('"level":"error"') || l.includes('"level":"warning"'));
  }
}

/** What the counters say at one moment. */
async function snapshot(ctx) {
  const m = await ctx.op.metrics();
  return {
    t: performance.now(),
    api: grouped(m, 'fdstore_operator_api_requests_total', ['verb', 'resource']),
    // KubeApi counts a success as 200 whatever the server said (201 for a create).
    apiErrors: m.filter((s) => s.name === 'fdstore_operator_api_requests_total' && s.labels.code !== '200').reduce((a, s) => a + s.value, 0),
    polls: grouped(m, 'fdstore_operator_agent_polls_total', ['result']),
    events: grouped(m, 'fdstore_operator_events_total', ['reason']),
    reconciles: grouped(m, 'fdstore_operator_reconciles_total', ['result']),
    watchRestarts: grouped(m, 'fdstore_operator_watch_restarts_total', ['resource']),
    proxy: ctx.proxy?.snapshot() ?? {},
    connections: ctx.proxy?.connections ?? 0,
    queueDepth: m.find((s) => s.name === 'fdstore_operator_queue_depth')?.value ?? NaN,
    heapUsed: m.find((s) => s.name === 'nodejs_heap_size_used_bytes')?.value ?? NaN,
    sim: await ctx.sim.stats(),
    cpu: cpuSeconds(ctx.op.pid),
  };
}

/** One steady-state window: counters before and after, RSS sampled through it. */
async function measureWindow(ctx, seconds) {
  const a = await snapshot(ctx);
  const rss = [rssBytes(ctx.op.pid)];
  const depth = [a.queueDepth];
  while (performance.now() - a.t < seconds * 1000) {
    await sleep(Math.min(RSS_SAMPLE_MS, seconds * 1000 - (performance.now() - a.t)));
    rss.push(rssBytes(ctx.op.pid));
    depth.push((await ctx.op.metrics()).find((s) => s.name === 'fdstore_operator_queue_depth')?.value ?? NaN);
  }
  const b = await snapshot(ctx);
  const min = (b.t - a.t) / 60_000;
  const req = (s) => s.sim.requests;
  return {
    seconds: (b.t - a.t) / 1000,
    api: rates(a.api, b.api, min),
    apiPerMin: (total(b.api) - total(a.api)) / min,
    apiErrors: b.apiErrors - a.apiErrors,
    proxy: rates(a.proxy, b.proxy, min),
    proxyPerMin: (total(b.proxy) - total(a.proxy)) / min,
    connectionsPerMin: (b.connections - a.connections) / min,
    polls: rates(a.polls, b.polls, min),
    pollsPerMin: (total(b.polls) - total(a.polls)) / min,
    agentRequests: rates(req(a), req(b), min),
    agentRequestsPerMin: (total(req(b)) - total(req(a))) / min,
    events: rates(a.events, b.events, min),
    reconcilesPerMin: (total(b.reconciles) - total(a.reconciles)) / min,
    reconcileErrors: (b.reconciles.error ?? 0) - (a.reconciles.error ?? 0),
    changesPerSecond: (b.sim.changes - a.sim.changes) / (min * 60),
    rssBytes: { samples: rss, median: median(rss), max: Math.max(...rss) },
    // Pod keys waiting or held back by the status write interval (and every pod, each RESYNC_MS).
    queueDepth: { samples: depth, median: median(depth), max: Math.max(...depth) },
    heapUsedBytes: b.heapUsed,
    cpuPercent: (100 * (b.cpu - a.cpu)) / (min * 60),
    simRssBytes: b.sim.rssBytes,
    apiserverRssBytes: ctx.cluster.apiserverRss(),
  };
}

/** One size: namespace, simulated agents, policy, pods, proxy, operator; measured; all of it removed. */
async function phase(cluster, node, n, log) {
  const ns = await cluster.namespace('fdstore-bench');
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-op-'));
  let sim, op, proxy, stores;
  try {
    sim = new Sim({ n, kubeconfig: cluster.env.KUBECONFIG, namespace: ns, nodeName: node.name, delayMs: [KUBELET_SYNC_MS, CONFIG_POLL_MS] });
    const ports = await sim.ports();
    await cluster.createPolicy(benchPolicy('bench', ns, LABELS));
    const tPods = performance.now();
    await cluster.createPods(ns, node.name, ports, LABELS);
    const podsS = (performance.now() - tPods) / 1000;
    log('p');

    let kubeconfig = cluster.env.KUBECONFIG;
    if (PROXY) {
      const up = cluster.upstream();
      proxy = await CountingProxy.start(up.server, up.ca, dir);
      kubeconfig = join(dir, 'kubeconfig');
      cluster.writeKubeconfig(kubeconfig, proxy.url, proxy.cert);
    }

    const seen = new Map();
    let created = 0;
    let applied = 0;
    const t = {};
    const t0 = performance.now();
    stores = cluster.watchStores(ns, (name, s) => {
      const ok = s.status?.conditions?.some((c) => c.type === 'ConfigApplied' && c.status === 'True') ?? false;
      const was = seen.get(name);
      if (was === undefined) created++;
      if (ok && !was) applied++;
      if (!ok && was) applied--;
      seen.set(name, ok);
      const now = (performance.now() - t0) / 1000;
      if (created === n && t.fdstoresS === undefined) t.fdstoresS = now;
      if (applied === n && t.configAppliedS === undefined) t.configAppliedS = now;
    });
    op = new Operator(kubeconfig, ns);
    const ctx = { cluster, op, sim, proxy };
    void op.child.waitLine((l) => l.includes('"leading: reconciling enrolled pods"'), SETTLE_DEADLINE_MS)
      .then(() => (t.leadingS = (performance.now() - t0) / 1000), () => {});
    void sim.event('annotated', SETTLE_DEADLINE_MS).then(() => (t.annotatedS = (performance.now() - t0) / 1000), () => {});
    void sim.event('applied', SETTLE_DEADLINE_MS).then(() => (t.agentsAppliedS = (performance.now() - t0) / 1000), () => {});
    const settled = await waitFor(() => t.configAppliedS !== undefined || performance.now() - t0 > SETTLE_DEADLINE_MS, SETTLE_DEADLINE_MS + 5_000, 'ConfigApplied')
      .then(() => t.configAppliedS !== undefined);
    const rssSettled = rssBytes(op.pid);
    const startCpuS = cpuSeconds(op.pid);
    const startWallS = (performance.now() - t0) / 1000;
    log('a');
    // The last writes of the start: the queue empty, then the steady state.
    await waitFor(async () => (await op.metrics()).find((s) => s.name === 'fdstore_operator_queue_depth')?.value === 0, 60_000, 'an empty work queue');
    const load = { before: loadavg() };
    const idle = await measureWindow(ctx, WINDOW_S);
    log('i');
    sim.send({ rate: RATE });
    const busy = await measureWindow(ctx, WINDOW_S);
    sim.send({ rate: 0 });
    load.after = loadavg();
    log('b');
    return {
      pods: n,
      namespace: ns,
      createPodsS: podsS,
      settled,
      ...(settled ? {} : { settledCounts: { created, applied } }),
      times: t,
      rssAfterStartBytes: rssSettled,
      // CPU seconds from spawn to every FdStore ConfigApplied, over the wall time: 100 % is one core.
      startCpuPercent: (100 * startCpuS) / startWallS,
      idle,
      busy,
      loadavg: load,
      operatorWarnings: op.errors().slice(-5),
      operatorWarningCount: op.errors().length,
    };
  } finally {
    stores?.stop();
    if (op) await op.child.stop('SIGTERM', 15_000).catch(() => {});
    if (sim) await sim.stop();
    await proxy?.close();
    await cluster.deleteNamespace(ns).catch((e) => log(`\n(cleanup of ${ns} failed: ${e.message})\n`));
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function operatorBench(log) {
  const c = await clusterEnv();
  if (c.skipped) return { skipped: c.skipped };
  const cluster = new Cluster(c.env);
  try {
    await cluster.deleteStale();
    await cluster.applyCrds();
    const out = { pods: PODS, baselinePods: BASELINE_PODS, windowS: WINDOW_S, rate: RATE, proxy: PROXY,
      kubeletDelayMs: KUBELET_SYNC_MS, configPollMs: CONFIG_POLL_MS, apiserverRssBefore: cluster.apiserverRss() };
    const node = await cluster.fakeNode();
    out.node = node.name;
    try {
      let t = performance.now();
      out.baseline = await phase(cluster, node, BASELINE_PODS, log);
      out.baseline.phaseS = (performance.now() - t) / 1000;
      t = performance.now();
      out.full = await phase(cluster, node, PODS, log);
      out.full.phaseS = (performance.now() - t) / 1000;
    } finally {
      await node.remove().catch((e) => log(`\n(cleanup of node ${node.name} failed: ${e.message})\n`));
    }
    out.apiserverRssAfter = cluster.apiserverRss();
    return out;
  } finally {
    cluster.close();
  }
}
