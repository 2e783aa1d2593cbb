/**
 * Processes for the benchmark: children whose stdout is read line by line, the
 * agent started the way a pod starts it, and what /proc says about a pid.
 * Every child started here is killed by pid on failure (never by name).
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { clearTimeout, setTimeout } from 'node:timers';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

export const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));
export const BUILD = join(ROOT, 'bench', '.build');

/** Children still running, so a failed benchmark leaves nothing behind. */
const live = new Set();

export function killAll() {
  for (const c of live) c.kill('SIGKILL');
}

/** A cancellable timeout (a pending one would keep the process alive at the end). */
function timer(ms) {
  let id;
  const done = new Promise((resolve) => (id = setTimeout(() => resolve('timeout'), ms)));
  return { done, cancel: () => clearTimeout(id) };
}

/** A child process whose stdout (and optionally stderr) arrive as lines. */
export class Child {
  constructor(cmd, args, { stdin = 'ignore', stderr = 'inherit', cwd = undefined, env = undefined } = {}) {
    this.cmd = cmd;
    this.proc = spawn(cmd, args, { stdio: [stdin, 'pipe', stderr], cwd, env });
    this.pid = this.proc.pid;
    this.lines = [];
    this.waiters = [];
    this.exited = new Promise((resolve) => {
      this.proc.once('exit', (code, signal) => {
        live.delete(this);
        this.exitCode = code;
        resolve({ code, signal });
        this.notify();
      });
    });
    this.proc.once('error', (e) => {
      this.error = e;
      this.notify();
    });
    live.add(this);
    this.read(this.proc.stdout);
    if (stderr === 'pipe') this.read(this.proc.stderr);
  }

  read(stream) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
      this.notify();
    });
  }

  notify() {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the first line (in arrival order, from index `from`) that matches. */
  async waitLine(match, timeoutMs, from = 0) {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const line = this.lines.slice(from).find(match);
      if (line !== undefined) return line;
      if (this.error) throw this.error;
      if (this.exitCode !== undefined || this.proc.signalCode) {
        throw new Error(`${this.cmd} exited (${this.exitCode ?? this.proc.signalCode}) before the expected line; last lines:\n${this.lines.slice(-5).join('\n')}`);
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.cmd}: no expected line within ${timeoutMs} ms; last lines:\n${this.lines.slice(-5).join('\n')}`);
      const t = timer(Math.min(left, 250));
      await Promise.race([new Promise((r) => this.waiters.push(r)), t.done]);
      t.cancel();
    }
  }

  /** First stdout line that parses as JSON. */
  async json(timeoutMs) {
    return JSON.parse(await this.waitLine((l) => l.startsWith('{'), timeoutMs));
  }

  kill(signal = 'SIGTERM') {
    if (this.exitCode === undefined && !this.proc.signalCode) this.proc.kill(signal);
  }

  /** Closes stdin (processes started with --hold exit then). */
  release() {
    this.proc.stdin?.end();
  }

  /** Waits for exit; SIGKILL after timeoutMs. */
  async stop(signal, timeoutMs = 10_000) {
    if (signal) this.kill(signal);
    const t = timer(timeoutMs);
    const first = await Promise.race([this.exited, t.done]);
    t.cancel();
    if (first === 'timeout') {
      this.kill('SIGKILL');
      await this.exited;
      throw new Error(`${this.cmd} did not exit within ${timeoutMs} ms`);
    }
    return this.exited;
  }
}

/** Runs a command to completion; resolves with its stdout. */
export async function run(cmd, args, timeoutMs = 60_000) {
  const c = new Child(cmd, args);
  const { code } = await c.stop(undefined, timeoutMs);
  if (code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${code}:\n${c.lines.join('\n')}`);
  return c.lines;
}

/** The agent as the brief starts it: one container, a 19,000-fd store, no HTTP. */
export async function startAgent(runDir, extra = []) {
  const args = [join(ROOT, 'bin', 'fdstore.js'), 'agent', '--run-dir', runDir, '--container', 'bench', '--fd-store-max', '19000', '--http', 'off', ...extra];
  const agent = new Child(process.execPath, args, { stderr: 'pipe' });
  await agent.waitLine((l) => l.includes('"agent ready"'), 20_000);
  return {
    child: agent,
    pid: agent.pid,
    notify: join(runDir, 'bench', 'notify'),
    launcher: join(runDir, 'bench', 'fdstore-exec'),
    /** Log lines that are errors: a benchmark of a failing agent is void. */
    errors: () => agent.lines.filter((l) => l.includes('"level":"error"')),
    stop: () => agent.stop('SIGTERM', 20_000),
  };
}

/** Resident set size in bytes (VmRSS of /proc/PID/status). */
export function rssBytes(pid) {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

export function fdCount(pid) {
  return readdirSync(`/proc/${pid}/fd`).length;
}

export { sleep };
