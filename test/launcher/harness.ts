// Runs the built fdstore-exec and the python restore peer for the launcher tests.
import { execFileSync, spawn, spawnSync, type StdioOptions } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const launcher = path.join(root, 'agent/launcher/fdstore-exec');
export const checkApp = path.join(root, 'test/launcher/check_app.py');
const peerScript = path.join(root, 'test/helpers/restore_peer.py');

/** make is a no-op when the binary is fresh, and renames into place, so every test
 * file may call it concurrently. */
export function buildLauncher(): void {
  execFileSync('make', ['-s', '-C', path.join(root, 'agent/launcher')], { stdio: 'inherit' });
}

export function tempDir(): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), 'fdstore-exec-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** A clean environment, so the results do not depend on the caller's. */
export function env(extra: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra };
}

export interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
  ms: number;
}

export interface RunOptions {
  env?: Record<string, string>;
  cwd?: string;
  stdio?: StdioOptions;
  exe?: string;
  /** Called with the launcher's pid right after the spawn. */
  onSpawn?: (pid: number) => void;
}

export function run(args: string[], opts: RunOptions = {}): Promise<Run> {
  const started = performance.now();
  const child = spawn(opts.exe ?? launcher, args, {
    env: opts.env ?? env(),
    cwd: opts.cwd,
    stdio: opts.stdio ?? ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid !== undefined) opts.onSpawn?.(child.pid);
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({ code, signal, stdout, stderr, pid: child.pid ?? -1, ms: performance.now() - started }),
    );
  });
}

/** What check_app.py prints. */
export interface AppReport {
  pid: number;
  env: Record<string, string | null>;
  open: number[];
  cloexec: number[];
  probes: Record<string, string>;
  misplaced: number[];
}

export function report(r: Run): AppReport {
  return JSON.parse(r.stdout) as AppReport;
}

export interface Peer {
  /** The peer's final JSON line (what it sent and heard back). */
  result: Promise<Record<string, unknown>>;
  kill: () => void;
}

/** Starts the python peer on dir/restore and resolves once it listens. */
export function startPeer(dir: string, args: string[]): Promise<Peer> {
  const child = spawn('python3', [peerScript, '--dir', dir, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  const result = new Promise<Record<string, unknown>>((resolve, reject) => {
    child.on('close', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      if (code === 0 && last.startsWith('{')) resolve(JSON.parse(last) as Record<string, unknown>);
      else reject(new Error(`restore peer exited ${code}: ${out}`));
    });
  });
  result.catch(() => {}); // tests that kill the peer never look at it
  return new Promise((resolve, reject) => {
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      const before = out;
      out += d;
      if (!before.includes('listening\n') && out.includes('listening\n'))
        resolve({ result, kill: () => child.kill('SIGKILL') });
    });
    child.on('error', reject);
    child.on('close', () => reject(new Error(`restore peer exited before listening: ${out}`)));
  });
}

let inheritedCache: number[] | undefined;

/** Fds above stdio that any child of this test process inherits without the
 * launcher (e.g. a pipe the test runner's own parent leaked): they pass through. */
function inherited(): number[] {
  if (!inheritedCache) {
    const r = spawnSync('python3', [checkApp], { env: env(), encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    inheritedCache = (JSON.parse(r.stdout) as AppReport).open.filter((fd) => fd > 2);
  }
  return inheritedCache;
}

/** The fds the app should have open: stdio, the n restored at 3.., and whatever
 * was inherited above them; nothing the launcher opened itself. */
export function expectedOpen(n: number, stdio = [0, 1, 2]): number[] {
  const fds = new Set([...stdio, ...Array.from({ length: n }, (_, i) => 3 + i)]);
  for (const fd of inherited()) if (fd >= 3 + n) fds.add(fd);
  return [...fds].sort((a, b) => a - b);
}
