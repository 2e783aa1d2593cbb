/**
 * `npm run demo`: restarts that drop nothing. Starts an agent in a temp dir and a
 * small HTTP server behind fdstore-exec, restarts the server 20 times under load,
 * and prints the failed requests with the store, without it, and on crashes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../native/load.js';
import { launcherPath } from '../unit/layout.js';
import { Load, sleep, type LoadStats } from './load.js';

const RESTARTS = Number(process.env.DEMO_RESTARTS ?? 20);
/** Time the server serves between restarts. */
const UPTIME_MS = 150;

interface Mode {
  title: string;
  container: string;
  signal: NodeJS.Signals;
}

const MODES: Mode[] = [
  // A container restart in place (what the kubelet does on a crash or liveness
  // failure), not a rollout: a rollout replaces the pod, and its store with it.
  { title: 'fd store, SIGTERM (container restart)', container: 'web', signal: 'SIGTERM' },
  { title: 'no store, SIGTERM', container: 'nostore', signal: 'SIGTERM' },
  { title: 'fd store, SIGKILL (crash)', container: 'crash', signal: 'SIGKILL' },
];

export async function main(): Promise<number> {
  const root = packageRoot();
  const runDir = mkdtempSync(join(tmpdir(), 'fdstore-demo-'));
  const config = join(runDir, 'config.yaml');
  writeFileSync(config, 'containers:\n  - name: web\n  - name: nostore\n    fileDescriptorStoreMax: 0\n  - name: crash\n');
  const agent = spawn(process.execPath, [join(root, 'bin', 'fdstore.js'), 'agent', '--run-dir', runDir, '--config', config, '--http', 'off'], {
    stdio: ['ignore', 'inherit', 'pipe'],
  });
  try {
    await waitForLine(agent, 'agent ready');
    say(`agent running, run dir ${runDir}; ${RESTARTS} restarts per mode\n`);
    const results: [Mode, LoadStats][] = [];
    for (const mode of MODES) results.push([mode, await runMode(root, runDir, mode)]);
    say('\n' + table(results));
    const [store, , crash] = results.map((r) => r[1]);
    const pass = store!.refused + store!.other === 0 && crash!.refused === 0;
    say(pass ? '\nWith the store: no failed request on stop, no refused connection on crash.\n' : '\nUNEXPECTED: the store run lost requests.\n');
    return pass ? 0 : 1;
  } finally {
    agent.kill('SIGTERM');
    await new Promise((r) => agent.once('exit', r));
    rmSync(runDir, { recursive: true, force: true });
  }
}

async function runMode(root: string, runDir: string, mode: Mode): Promise<LoadStats> {
  say(`- ${mode.title}: `);
  const port = await freePort();
  const start = (): ChildProcess =>
    spawn(launcherPath(runDir, mode.container), ['--', 'python3', join(root, 'demo', 'server.py'), String(port)], { stdio: 'ignore' });
  let server = start();
  await untilListening(port);
  const load = new Load(port);
  load.start();
  for (let i = 0; i < RESTARTS; i++) {
    await sleep(UPTIME_MS);
    const exited = new Promise((r) => server.once('exit', r));
    server.kill(mode.signal);
    await exited;
    server = start();
    say('.');
  }
  await sleep(UPTIME_MS);
  const stats = await load.stop();
  const exited = new Promise((r) => server.once('exit', r));
  server.kill('SIGTERM');
  await exited;
  say(' done\n');
  return stats;
}

function table(rows: [Mode, LoadStats][]): string {
  const head = ['mode', 'restarts', 'requests', 'failed', 'refused', 'reset/other'];
  const body = rows.map(([m, s]) => [m.title, String(RESTARTS), String(s.sent), String(s.refused + s.other), String(s.refused), String(s.other)]);
  const all = [head, ...body];
  const w = head.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ')).join('\n') + '\n';
}

function waitForLine(child: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let buf = '';
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (d: string) => {
      buf += d;
      if (buf.includes(text)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`agent exited (${code}): ${buf}`)));
  });
}

/** The first start binds the port: count only what happens after it listens. */
async function untilListening(port: number): Promise<void> {
  for (;;) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(20);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function say(s: string): void {
  process.stdout.write(s);
}

main().then((code) => (process.exitCode = code), (e) => {
  process.stderr.write(`demo failed: ${(e as Error).stack}\n`);
  process.exitCode = 1;
});
