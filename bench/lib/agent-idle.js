/**
 * The sidecar must not grow (issue 8): the agent's start-up time and idle RSS with
 * `--config FILE` (the text the operator writes into a pod's annotation: policy,
 * defaults and two containers) against the same agent without it, and a bare
 * `node` as the floor, interleaved in one run. Also proves, from outside the
 * process, that the agent never opens a file of @kubernetes/client-node: strace
 * records every openat(2) of an agent run (and of a control that does import it,
 * so the check is shown to catch it).
 */
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONTAINERS, renderedConfig } from './policy.js';
import { Child, ROOT, rssBytes, sleep } from './proc.js';
import { median } from './stats.js';
import { performance } from 'node:perf_hooks';

const BIN = join(ROOT, 'bin', 'fdstore.js');
/** Idle RSS is read this long after start-up (the first config poll, 5 s, has not run yet). */
export const IDLE_SETTLE_MS = 3_000;
const HEALTHZ_POLL_MS = 5;
const START_DEADLINE_MS = 20_000;
/** What the trace looks for: a file of the package, wherever node_modules is. */
const CLIENT_NODE = /node_modules\/@kubernetes\/client-node\//;

/** A port free now (the agent binds it a moment later; a clash fails the sample loudly). */
function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

function httpGet(port, path) {
  return new Promise((resolve) => {
    const req = get({ host: '127.0.0.1', port, path, agent: false, timeout: 2_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ code: res.statusCode, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve({ code: 0, body: '' }));
  });
}

/** Milliseconds from t0 until /healthz answers 200 (polled every HEALTHZ_POLL_MS). */
async function untilHealthy(port, t0) {
  for (;;) {
    if ((await httpGet(port, '/healthz')).code === 200) return performance.now() - t0;
    if (performance.now() - t0 > START_DEADLINE_MS) throw new Error(`/healthz on ${port} not 200 within ${START_DEADLINE_MS} ms`);
    await sleep(HEALTHZ_POLL_MS);
  }
}

function agentArgs(dir, port, config) {
  return ['agent', '--run-dir', join(dir, 'run'), ...CONTAINERS.flatMap((c) => ['--container', c]), '--http', `127.0.0.1:${port}`,
    ...(config ? ['--config', config] : [])];
}

/** One agent: spawn -> 'agent ready' and -> /healthz 200, RSS once idle, and its /status checked. */
async function agentOnce(config, wantHash) {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-idle-'));
  const port = await freePort();
  const t0 = performance.now();
  const agent = new Child(process.execPath, [BIN, ...agentArgs(dir, port, config)], { stderr: 'pipe' });
  try {
    const [readyMs, healthzMs] = await Promise.all([
      agent.waitLine((l) => l.includes('"agent ready"'), START_DEADLINE_MS).then(() => performance.now() - t0),
      untilHealthy(port, t0),
    ]);
    await sleep(IDLE_SETTLE_MS);
    const rss = rssBytes(agent.pid);
    // The sample counts only if the agent runs the file (or no file): its /status says which.
    const status = JSON.parse((await httpGet(port, '/status')).body);
    if (status.config.hash !== wantHash) throw new Error(`agent reports config hash ${status.config.hash}, expected ${wantHash}`);
    const errors = agent.lines.filter((l) => l.includes('"level":"error"'));
    if (errors.length) throw new Error(`agent logged errors:\n${errors.join('\n')}`);
    return { readyMs, healthzMs, rss };
  } finally {
    await agent.stop('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The floor: node itself, idle (an interval keeps it alive), start = spawn -> its first line. */
async function bareOnce() {
  const t0 = performance.now();
  const c = new Child(process.execPath, ['-e', 'process.stdout.write("up\\n"); setInterval(() => {}, 1 << 30)']);
  try {
    await c.waitLine((l) => l === 'up', START_DEADLINE_MS);
    const readyMs = performance.now() - t0;
    await sleep(IDLE_SETTLE_MS);
    return { readyMs, rss: rssBytes(c.pid) };
  } finally {
    await c.stop('SIGTERM');
  }
}

/** The pid strace started (its only child), so the traced process gets the signal, not strace. */
async function tracee(stracePid) {
  const deadline = Date.now() + START_DEADLINE_MS;
  for (;;) {
    try {
      const kids = readFileSync(`/proc/${stracePid}/task/${stracePid}/children`, 'utf8').trim();
      if (kids) return Number(kids.split(' ')[0]);
    } catch {
      // strace not there yet, or gone: the deadline decides
    }
    if (Date.now() > deadline) throw new Error('strace started no process');
    await sleep(20);
  }
}

/** Files a traced run opened successfully (openat results >= 0), de-duplicated. */
function openedFiles(traceFile) {
  const files = new Set();
  for (const line of readFileSync(traceFile, 'utf8').split('\n')) {
    const m = /openat\([^,]+, "([^"]+)",.*\) = (-?\d+)/.exec(line);
    if (m && Number(m[2]) >= 0) files.add(m[1]);
  }
  return [...files];
}

function packagesOf(files) {
  const pkgs = new Set();
  for (const f of files) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f);
    if (m) pkgs.add(m[1]);
  }
  return [...pkgs].sort();
}

/**
 * strace -f -e trace=openat over a whole agent run: start, /healthz, /status,
 * /metrics, SIGTERM. Then the control: `import('@kubernetes/client-node')` under
 * the same trace must show the package (else the check proves nothing).
 */
async function clientNodeCheck(config) {
  try {
    execFileSync('strace', ['-V'], { stdio: 'ignore' });
  } catch {
    return { checked: false, why: 'strace is not installed (apt-get install strace)' };
  }
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-trace-'));
  try {
    const trace = (name) => ['-f', '-qq', '-e', 'trace=openat', '-o', join(dir, name)];
    const port = await freePort();
    const st = new Child('strace', [...trace('agent.trace'), process.execPath, BIN, ...agentArgs(dir, port, config)], { stderr: 'pipe' });
    try {
      await st.waitLine((l) => l.includes('"agent ready"'), START_DEADLINE_MS * 3);
      for (const p of ['/healthz', '/status', '/metrics']) await httpGet(port, p);
      process.kill(await tracee(st.pid), 'SIGTERM');
      await st.stop(undefined, 20_000);
    } finally {
      st.kill('SIGKILL');
    }
    const agentFiles = openedFiles(join(dir, 'agent.trace'));
    const ctl = new Child('strace', [...trace('control.trace'), process.execPath, '--input-type=module', '-e',
      'await import("@kubernetes/client-node"); process.stdout.write("imported\\n")'], { cwd: ROOT });
    await ctl.waitLine((l) => l === 'imported', START_DEADLINE_MS * 3);
    await ctl.stop(undefined, 20_000);
    const controlFiles = openedFiles(join(dir, 'control.trace'));
    return {
      checked: true,
      agentOpensClientNode: agentFiles.some((f) => CLIENT_NODE.test(f)),
      agentFilesOpened: agentFiles.length,
      agentPackages: packagesOf(agentFiles),
      controlOpensClientNode: controlFiles.some((f) => CLIENT_NODE.test(f)),
      controlClientNodeFiles: controlFiles.filter((f) => CLIENT_NODE.test(f)).length,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const summary = (xs) => ({ samples: xs, median: median(xs), min: Math.min(...xs), max: Math.max(...xs) });

/** reps rounds of {with --config, without, bare node}, rotated per round. */
export async function agentIdleBench(reps, log) {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-bench-config-'));
  try {
    const text = renderedConfig();
    const config = join(dir, 'config');
    writeFileSync(config, text);
    const hash = createHash('sha256').update(text).digest('hex');
    const kinds = ['config', 'flags', 'bare'];
    const s = { config: [], flags: [], bare: [] };
    for (let r = 0; r < reps; r++) {
      for (let i = 0; i < kinds.length; i++) {
        const k = kinds[(i + r) % kinds.length];
        if (k === 'config') s.config.push(await agentOnce(config, hash));
        else if (k === 'flags') s.flags.push(await agentOnce(null, null));
        else s.bare.push(await bareOnce());
      }
      log('.');
    }
    const clientNode = await clientNodeCheck(config);
    log('.');
    const agg = (xs) => ({
      readyMs: summary(xs.map((x) => x.readyMs)),
      ...(xs[0].healthzMs !== undefined ? { healthzMs: summary(xs.map((x) => x.healthzMs)) } : {}),
      rssBytes: summary(xs.map((x) => x.rss)),
    });
    const withConfig = agg(s.config);
    const withoutConfig = agg(s.flags);
    return {
      reps,
      settleMs: IDLE_SETTLE_MS,
      configBytes: Buffer.byteLength(text),
      configText: text,
      withConfig,
      withoutConfig,
      bareNode: agg(s.bare),
      ratio: {
        rss: withConfig.rssBytes.median / withoutConfig.rssBytes.median,
        ready: withConfig.readyMs.median / withoutConfig.readyMs.median,
        healthz: withConfig.healthzMs.median / withoutConfig.healthzMs.median,
      },
      clientNode,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
