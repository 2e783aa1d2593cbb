/**
 * Spawning helpers shared by the agent and client wrappers: run a program as
 * another uid with no capabilities (the way a pod runs it), inside another
 * process's PID + mount namespace, and talk to it one line at a time.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
/** The CLI under test; FDSTORE_BIN points the tests at another build (e.g. an installed package). */
export const FDSTORE_BIN = process.env.FDSTORE_BIN ?? resolve(REPO, 'bin', 'fdstore.js');
/** Debian's python3: python3-systemd is installed for it, not for a pyenv shim on PATH. */
export const PYTHON = '/usr/bin/python3';

export interface RunAs {
  uid: number;
  gid: number;
}

/** Where a process runs: as which uid, inside whose PID namespace. */
export interface Placement {
  user?: RunAs | undefined;
  /** Host pid of a process whose PID and mount namespaces the program enters (nsenter). */
  nsPid?: number | undefined;
}

/** The suite runs as root in CI: other uids (setpriv), PID namespaces (unshare), chown. */
export const isRoot = process.getuid?.() === 0;
/** Test-name suffix of what is skipped without root, so the skip says why. */
export const NEEDS_ROOT = '[needs root: other uids via setpriv, PID namespaces, chown; CI runs as root]';

function requireRoot(what: string): void {
  if (!isRoot) throw new Error(`${what} needs root (CAP_SETUID, CAP_SYS_ADMIN): run the suite as root, as CI does (see README)`);
}

/**
 * setpriv execs in place (the pid stays the program's), drops every capability
 * (bounding set too, as `drop: [ALL]` does) and supplementary groups.
 */
export function place(p: Placement, file: string, args: string[]): [string, string[]] {
  let f = file;
  let a = args;
  if (p.user) {
    if (p.user.uid !== process.getuid?.()) requireRoot(`running a process as uid ${p.user.uid}`);
    a = ['--reuid', String(p.user.uid), '--regid', String(p.user.gid), '--clear-groups',
      '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', f, ...a];
    f = 'setpriv';
  }
  if (p.nsPid !== undefined) {
    requireRoot('joining a PID namespace (nsenter)');
    // nsenter forks for a PID namespace: the program is its child, inside the namespace.
    a = ['--target', String(p.nsPid), '--pid', '--mount', '--', f, ...a];
    f = 'nsenter';
  }
  return [f, a];
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a program to completion (stdin closed, or fed `input`). */
export function run(
  file: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number; placement?: Placement } = {},
): Promise<RunResult> {
  const [f, a] = place(opts.placement ?? {}, file, args);
  return new Promise((resolvePromise, reject) => {
    const child = spawn(f, a, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 20_000);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolvePromise({ code, signal, stdout, stderr });
    });
    // The program may exit without reading stdin: EPIPE then is not an error of ours.
    child.stdin.on('error', () => undefined);
    if (opts.input !== undefined) child.stdin.end(opts.input);
    else child.stdin.end();
  });
}

/** A child process spoken to by request/response lines on stdin/stdout. */
export class LineProcess {
  readonly child: ChildProcess;
  private buf = '';
  private lines: string[] = [];
  private waiters: Array<{ resolve: (l: string) => void; reject: (e: Error) => void }> = [];
  private stderr = '';
  private exitError: Error | undefined;
  readonly exited: Promise<number | null>;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(file: string, args: string[], opts: { env?: NodeJS.ProcessEnv; placement?: Placement } = {}) {
    const [f, a] = place(opts.placement ?? {}, file, args);
    this.child = spawn(f, a, { env: opts.env ?? process.env, stdio: ['pipe', 'pipe', 'pipe'] });
    // A dead child shows up as a rejected request (fail() below), not as an EPIPE crash.
    this.child.stdin!.on('error', () => undefined);
    this.child.stdout!.setEncoding('utf8').on('data', (d: string) => this.onData(d));
    this.child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((res) => {
      this.child.on('error', (err) => {
        this.fail(err);
        res(null);
      });
      this.child.on('close', (code, signal) => {
        this.fail(new Error(`${file} exited (code ${code}, signal ${signal}); stderr: ${this.stderr}`));
        res(code);
      });
    });
  }

  get pid(): number {
    return this.child.pid ?? -1;
  }

  get stderrText(): string {
    return this.stderr;
  }

  private onData(d: string): void {
    this.buf += d;
    let i;
    while ((i = this.buf.indexOf('\n')) >= 0) {
      const line = this.buf.slice(0, i);
      this.buf = this.buf.slice(i + 1);
      const w = this.waiters.shift();
      if (w) w.resolve(line);
      else this.lines.push(line);
    }
  }

  private fail(err: Error): void {
    this.exitError = err;
    for (const w of this.waiters.splice(0)) w.reject(err);
  }

  /** Next line of output (lines are queued, none is lost). */
  nextLine(timeoutMs = 15_000): Promise<string> {
    const queued = this.lines.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.exitError) return Promise.reject(this.exitError);
    return new Promise((resolveLine, reject) => {
      const timer = setTimeout(() => {
        const idx = this.waiters.indexOf(w);
        if (idx >= 0) this.waiters.splice(idx, 1);
        reject(new Error(`no answer within ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      const w = {
        resolve: (l: string) => {
          clearTimeout(timer);
          resolveLine(l);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiters.push(w);
    });
  }

  /** Writes one request line and returns the one answer line; requests are serialised. */
  request(line: string, timeoutMs?: number): Promise<string> {
    const p = this.chain.then(() => {
      this.child.stdin!.write(`${line}\n`);
      return this.nextLine(timeoutMs);
    });
    this.chain = p.catch(() => undefined);
    return p;
  }

  /** Ends stdin and waits for the exit code; kills after a deadline. */
  async close(timeoutMs = 5_000): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    this.child.stdin!.end();
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }
}

/** Host pids of the direct children of a process. */
export function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter((s) => s !== '')
      .map(Number);
  } catch {
    return [];
  }
}

/**
 * Resolves once process `pid` sleeps in nanosleep(): the launcher's pause between
 * connect attempts, so it has found no agent at least once. A state of the process
 * read from /proc/PID/wchan, not a guess at how long that takes.
 */
export async function sleepingBetweenAttempts(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let wchan = '';
    try {
      wchan = readFileSync(`/proc/${pid}/wchan`, 'utf8');
    } catch {
      throw new Error(`process ${pid} exited before it waited for an agent`);
    }
    if (wchan.includes('nanosleep')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} never slept between connect attempts (wchan ${wchan})`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
