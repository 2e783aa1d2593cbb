/** Shared by test/native: a real peer process (python3) and small waits. */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { pollStart, pollStop, POLL_READABLE } from '../../src/native/sys.js';

const HELPER = fileURLToPath(new URL('../helpers/native-sendfds.py', import.meta.url));

export interface PeerResult {
  pid: number;
  info: Array<{ kind: string; port?: number; name?: string }>;
  received?: { data: string; fds: number; flags: number };
}

/** stdio for the child: our fds listed in `inherit` become its 3, 4, ... */
function stdio(inherit: number[]): Array<'ignore' | 'pipe' | 'inherit' | number> {
  return ['pipe', 'pipe', 'inherit', ...inherit];
}

/** Run the peer to completion (it sends one datagram and exits). */
export function sendDgram(spec: object, inherit: number[] = []): PeerResult {
  const r = spawnSync('python3', [HELPER, JSON.stringify({ mode: 'dgram', ...spec })], {
    stdio: stdio(inherit),
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`peer failed: ${r.status} ${r.stderr ?? ''}`);
  return JSON.parse(r.stdout) as PeerResult;
}

/** A peer that keeps running: result is its JSON line; end() closes its stdin (releases "hold"). */
export function startPeer(spec: object, inherit: number[] = []): {
  child: ChildProcess;
  result: Promise<PeerResult>;
  exited: Promise<number | null>;
  end(): void;
} {
  const child = spawn('python3', [HELPER, JSON.stringify(spec)], { stdio: stdio(inherit) });
  let out = '';
  const result = new Promise<PeerResult>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(JSON.parse(out.slice(0, nl)) as PeerResult);
    });
    child.on('exit', (code) => reject(new Error(`peer exited ${code} before reporting`)));
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, result, exited, end: () => child.stdin!.end() };
}

/** Resolves the next time fd is readable (or rejects after ms). */
export function readable(fd: number, ms = 5000): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      pollStop(h);
      reject(new Error(`fd ${fd} not readable after ${ms} ms`));
    }, ms);
    const h = pollStart(fd, POLL_READABLE, (status, events) => {
      clearTimeout(timer);
      pollStop(h);
      if (status < 0) reject(new Error(`poll status ${status}`));
      else resolve(events);
    });
  });
}

export function makeTmp(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'fdstore-native-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** close-on-exec as /proc shows it (fdinfo flags carry O_CLOEXEC = 02000000). */
export function isCloexec(fd: number): boolean {
  const m = /^flags:\s+([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
  return m !== null && (parseInt(m[1]!, 8) & 0o2000000) !== 0;
}

/**
 * Two turns of the event loop: the second passes through a poll phase that began
 * after this call, so an fd that is ready now has had its callback run by then.
 * The sync point for "this callback did not (or did) fire", instead of a sleep.
 */
export async function loopTurns(): Promise<void> {
  for (let i = 0; i < 2; i++) await new Promise<void>((r) => setImmediate(r));
}
