/**
 * Simulated agents for the operator step, the way kwok simulates kubelets: one
 * process serving N agent HTTP ports on 127.0.0.1. Each port is the agent's real
 * HTTP server (dist/http/server.js: same timeouts, connection cap and /status
 * long-poll route, with the real generation cursor and waiters of
 * dist/status/changes.js), and its document is built by the agent's own builder
 * (dist/status/build.js) from simulated containers: two containers, stored fds,
 * a watchdog, STATUS= text.
 *
 * What the kubelet and the agent do with the config annotation is simulated too:
 * the pods bound to the fake node are watched (as a kubelet watches its pods), and
 * when a pod's `fdstore.dev/config` changes, its agent loads the text with the
 * agent's own parser (dist/config/load.js) after a delay drawn like this cluster's
 * (the kubelet's sync period, then the agent's --config-poll), and reports its
 * sha256 and policy in /status, as a real agent does.
 *
 *   node bench/lib/sim-agents.js '{"n":1000,"kubeconfig":"...","namespace":"...","nodeName":"...","delayMs":[5000,5000]}'
 *
 * stdout, one JSON line each: {"ports":[...]} once listening; {"event":"annotated"} when
 * every agent has seen its annotation, {"event":"applied"} when every agent runs it.
 * stdin, one JSON line each: {"rate":K} (K state changes per second over random
 * agents), {"stats":true} (answered on stdout with {"stats":{...}}).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import { KubeConfig, Watch } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { loadConfig } from '../../dist/config/load.js';
import { HttpServer } from '../../dist/http/server.js';
import { createLogger } from '../../dist/log/log.js';
import { packageVersion } from '../../dist/metrics/version.js';
import { buildStatus } from '../../dist/status/build.js';
import { StatusChanges } from '../../dist/status/changes.js';
import { performance } from 'node:perf_hooks';
import { clearInterval, clearTimeout, setInterval } from 'node:timers';

const CONFIG_ANNOTATION = 'fdstore.dev/config';
const PORT_ANNOTATION = 'fdstore.dev/agent-port';
const CONTAINERS = ['app', 'worker'];
/** The simulated app pings its watchdog this often (the deadline moves, the generation does not). */
const PING_MS = 10_000;
const WATCH_RETRY_MS = 1_000;
const OK = Object.freeze({ ok: true, reason: 'ready' });
const LIVE = Object.freeze({ ok: true, reason: 'ok' });

const opts = JSON.parse(process.argv[2]);
const log = createLogger(process.stderr, 'warning');
const registry = new Registry();
const timers = { set: (fn, ms) => setTimeout(fn, ms).unref(), clear: (t) => clearTimeout(t) };
const sha256 = (t) => createHash('sha256').update(t, 'utf8').digest('hex');
const requests = { now: 0, waited: 0, refused_wait: 0, invalid: 0 };
const counts = { changes: 0, restores: 0, fdChanges: 0, configsSeen: 0, configsApplied: 0, configErrors: 0, watchRestarts: 0 };

const entry = (name, type) => ({ name, type });

/** A container as status/build.ts reads it (StatusContainer), with what a running app would have stored. */
function container(name, fds) {
  const c = {
    name,
    config: { listen: name === 'app' ? [{ name: 'http', kind: 'tcp' }] : [] },
    entries: fds,
    max: 4096,
    watchdogSec: 0,
    starts: 1,
    restores: 0,
    restoreFailures: 0,
    tally: { overLimit: 0, watchdogFailures: 0, startTimeouts: 0, lastRestore: null },
    statusText: name === 'app' ? 'serving 12 connections' : 'idle, 0 jobs queued',
  };
  c.store = { get size() { return c.entries.length; }, get max() { return c.max; }, list: () => c.entries, get: () => undefined };
  c.run = {
    phase: 'ready',
    get status() { return c.statusText; },
    errno: null,
    // The last ping (every PING_MS) plus the timeout, on the monotonic clock like a Run's.
    get watchdogDeadlineMs() { return c.watchdogSec ? Math.floor(performance.now() / PING_MS) * PING_MS + c.watchdogSec * 1000 : null; },
    watchdogFailure: null,
    readiness: () => OK,
    liveness: () => LIVE,
    watchdogMs: () => (c.watchdogSec ? c.watchdogSec * 1000 : null),
  };
  return c;
}

class SimAgent {
  constructor() {
    const started = new Date();
    this.info = { version: packageVersion(), startedAt: started.toISOString(), instance: randomUUID() };
    // A pod with the downwardAPI volume and no annotation yet: the kubelet projects an empty file.
    this.text = '';
    this.seen = null;
    this.pending = null;
    this.config = { policy: null, hash: sha256(''), loadedAt: started.toISOString(), error: null, reloads: 0, rejected: 0 };
    this.containers = [
      container('app', [entry('http', 'tcp_listen'), entry('conn', 'tcp'), entry('conn', 'tcp'), entry('state', 'memfd')]),
      container('worker', [entry('queue', 'unix')]),
    ];
    this.changes = new StatusChanges({ runOf: () => undefined, timers });
    const changes = this.changes;
    this.source = {
      get generation() { return changes.generation; },
      get waiting() { return changes.waiting; },
      current: async () => this.status(),
      wait: (after, ms) => changes.wait(after, ms),
      cancelAll: () => changes.cancelAll(),
    };
  }

  status() {
    return buildStatus({
      generation: this.changes.generation,
      agent: this.info,
      config: this.config,
      containers: this.containers,
      tally: (n) => this.containers.find((c) => c.name === n).tally,
      typeOf: (e) => e.type,
      monoNowMs: performance.now(),
      wallNowMs: Date.now(),
    });
  }

  /** The pod's annotation as the API server has it now; the file follows after the kubelet's delay. */
  annotated(text) {
    if (text === this.seen) return;
    if (text !== '' && (this.seen === null || this.seen === '')) counts.configsSeen++;
    this.seen = text;
    clearTimeout(this.pending);
    const [kubelet, poll] = opts.delayMs;
    this.pending = setTimeout(() => this.load(text), Math.random() * kubelet + Math.random() * poll);
  }

  /** What the agent's live reload does with a new file: apply it (or refuse it), show it in /status. */
  load(text) {
    if (text === this.text) return;
    const now = new Date().toISOString();
    try {
      const loaded = loadConfig({ containers: CONTAINERS, defaults: {} }, text, 'config');
      for (const c of this.containers) {
        const cfg = loaded.containers.find((x) => x.name === c.name);
        if (cfg) {
          c.max = cfg.fileDescriptorStoreMax;
          c.watchdogSec = cfg.watchdogSec;
        }
      }
      if (this.text === '') counts.configsApplied++;
      this.text = text;
      this.config = { ...this.config, policy: loaded.policy, hash: sha256(text), loadedAt: now, error: null, reloads: this.config.reloads + 1 };
    } catch (e) {
      counts.configErrors++;
      this.config = { ...this.config, error: { message: e.message, hash: sha256(text), at: now }, rejected: this.config.rejected + 1 };
    }
    this.changes.bump();
    if (counts.configsApplied === opts.n && !announced.applied) announce('applied');
  }

  /** One change an operator must see: a container restart that got its fds back, or an fd stored/closed. */
  change() {
    const app = this.containers[0];
    counts.changes++;
    if (counts.changes % 2 === 0) {
      counts.restores++;
      app.starts++;
      app.restores++;
      app.tally.lastRestore = { at: new Date().toISOString(), fds: app.entries.length + app.config.listen.length };
      app.statusText = `serving 0 connections (restart ${app.restores})`;
    } else {
      counts.fdChanges++;
      const conns = app.entries.filter((e) => e.name === 'conn').length;
      if (conns > 2) app.entries.splice(app.entries.findIndex((e) => e.name === 'conn'), 1);
      else app.entries.push(entry('conn', 'tcp'));
      app.statusText = `serving ${12 + app.entries.length} connections`;
    }
    this.changes.bump();
  }
}

const announced = {};
function announce(event) {
  announced[event] = true;
  out({ event });
}
function out(obj) {
  process.stdout.write(`${JSON.stringify(obj)}\n`);
}

const agents = [];
const byPort = new Map();
for (let i = 0; i < opts.n; i++) {
  const a = new SimAgent();
  const http = new HttpServer({
    registry,
    log,
    health: () => OK,
    run: (name) => a.containers.find((c) => c.name === name)?.run,
    status: a.source,
    statusRequest: (kind) => requests[kind]++,
  });
  const bound = await http.start({ host: '127.0.0.1', port: 0 });
  a.port = bound.port;
  agents.push(a);
  byPort.set(bound.port, a);
}

/** The pods bound to the fake node, as its kubelet would watch them; restarted when the server ends the watch. */
const kc = new KubeConfig();
kc.loadFromFile(opts.kubeconfig);
const watch = new Watch(kc);
async function watchPods() {
  const path = `/api/v1/namespaces/${opts.namespace}/pods`;
  const restart = () => {
    counts.watchRestarts++;
    setTimeout(() => void watchPods(), WATCH_RETRY_MS);
  };
  try {
    await watch.watch(path, { fieldSelector: `spec.nodeName=${opts.nodeName}` }, (type, pod) => {
      if (type !== 'ADDED' && type !== 'MODIFIED') return;
      const a = byPort.get(Number(pod.metadata?.annotations?.[PORT_ANNOTATION]));
      if (!a) return;
      a.annotated(pod.metadata.annotations?.[CONFIG_ANNOTATION] ?? '');
      if (counts.configsSeen === opts.n && !announced.annotated) announce('annotated');
    }, (err) => {
      if (err && err.name !== 'AbortError') log.warning('pod watch ended', { error: String(err.message ?? err) });
      restart();
    });
  } catch (e) {
    log.warning('pod watch failed', { error: String(e.message ?? e) });
    restart();
  }
}
void watchPods();

let ticker = null;
function setRate(k) {
  clearInterval(ticker);
  ticker = null;
  if (k > 0) ticker = setInterval(() => agents[Math.floor(Math.random() * agents.length)].change(), 1000 / k);
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const m = JSON.parse(line);
  if (m.rate !== undefined) setRate(m.rate);
  if (m.stats) {
    const waiting = agents.reduce((n, a) => n + a.changes.waiting, 0);
    out({ stats: { requests: { ...requests }, ...counts, waiting, rssBytes: process.memoryUsage().rss, cpu: process.cpuUsage() } });
  }
}).on('close', () => process.exit(0));

out({ ports: agents.map((a) => a.port) });
