/**
 * Runs the real agent (`node bin/fdstore.js agent`) as a child process in a fresh
 * run dir, collects its JSON log lines, and inspects it the way an operator would:
 * /proc/PID/fd for its open fds, `fdstore ls --json` for its stores.
 *
 * The spawned program is node itself (or setpriv exec'ing node), so `pid` is the
 * agent's and /proc/PID/fd is the agent's table. With `pidns`, the agent runs as
 * pid 2 under a `sh` playing the pod's pause process (pid 1) in a new PID
 * namespace; `pid` is then its host pid and clients join with `placement()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { get as httpGet } from 'node:http';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { stringify } from 'yaml';
import { childrenOf, FDSTORE_BIN, isRoot, place, run, type Placement, type RunAs, type RunResult } from './proc.js';

export interface LogLine {
  time?: string;
  level?: string;
  msg: string;
  reason?: string;
  container?: string;
  [field: string]: unknown;
}

export type FdType = 'tcp_listen' | 'tcp' | 'udp' | 'unix_listen' | 'unix' | 'memfd' | 'pipe' | 'file' | 'other';

export interface LsContainer {
  name: string;
  count: number;
  max: number;
  /** Run state as the agent reports it ("ready" after READY=1...). */
  state?: string;
  /** Last STATUS= text (A2.5). */
  status?: string | null;
  /** Main pid as the agent's PID namespace sees it, null when unknown. */
  mainPid?: number | null;
  [field: string]: unknown;
}

export interface LsFd {
  container: string;
  fdname: string;
  type: FdType;
  inodeType: string;
  dev: string | number;
  inode: number;
  address: string;
  flags: 'ro' | 'wo' | 'rw';
  poll: boolean;
}

export interface LsJson {
  containers: LsContainer[];
  fds: LsFd[];
}

/** Reasons a whole datagram is dropped (warning). */
export const DROP_REASONS = ['too_large', 'nul_byte', 'no_credentials', 'truncated', 'unauthorized', 'bad_barrier'] as const;
/** Reasons the agent closes fds it received or stored. */
export const CLOSE_REASONS = [
  'over_limit', 'duplicate', 'not_stored', 'unauthorized', 'invalid_message', 'hangup', 'removed', 'released',
] as const;

export interface StartAgentOptions {
  /** Containers (one --container each); default ['app']. */
  containers?: string[];
  /** More agent flags (`--http 127.0.0.1:0` is always passed; a later --http wins). */
  args?: string[];
  /** Written as YAML to a file passed with --config. */
  config?: unknown;
  env?: NodeJS.ProcessEnv;
  /** Run the agent as this uid/gid with every capability dropped. */
  user?: RunAs;
  /** Run the agent in a new PID namespace (see the file comment). */
  pidns?: boolean;
  readyTimeoutMs?: number;
  /** RLIMIT_NOFILE (soft and hard) of the agent, set with prlimit: fd exhaustion tests stay small. */
  nofile?: number;
}

export class Agent {
  readonly logs: LogLine[] = [];
  private stderrText = '';
  private stdoutText = '';
  private waiters: Array<() => void> = [];
  /** Host pid of the node process that is the agent. */
  pid = -1;
  /**
   * Port of the agent's HTTP endpoint on 127.0.0.1 (bound to port 0 by startAgent,
   * read off its 'http listening' line, which comes before 'agent ready'); -1 if off.
   */
  httpPort = -1;
  readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(
    readonly child: ChildProcess,
    /** The mkdtemp directory (removed by dispose()); files for tests go here too. */
    readonly root: string,
    /** The agent's --run-dir. */
    readonly runDir: string,
    readonly opts: StartAgentOptions,
  ) {
    let buf = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => {
      this.stderrText += d;
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        this.onLine(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (this.stdoutText += d));
    this.exited = new Promise((res) => {
      child.on('close', (code) => {
        this.exitCode = code;
        this.wake();
        res(code);
      });
      child.on('error', () => {
        this.exitCode = null;
        this.wake();
        res(null);
      });
    });
  }

  private onLine(line: string): void {
    if (line.trim() === '') return;
    let parsed: LogLine;
    try {
      const v: unknown = JSON.parse(line);
      parsed = typeof v === 'object' && v !== null ? (v as LogLine) : { msg: line, unparsed: true };
    } catch {
      parsed = { msg: line, unparsed: true };
    }
    this.logs.push(parsed);
    this.wake();
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  get alive(): boolean {
    return this.exitCode === undefined;
  }

  /** Index to pass as `from` to only look at lines logged after this point. */
  mark(): number {
    return this.logs.length;
  }

  since(from: number): LogLine[] {
    return this.logs.slice(from);
  }

  /** Every `reason` logged since `from`, in order. */
  reasons(from = 0): string[] {
    return this.since(from).flatMap((l) => (typeof l.reason === 'string' ? [l.reason] : []));
  }

  /** Resolves with the first line (at index >= from) matching pred; rejects on timeout or exit. */
  async waitForLog(pred: (l: LogLine) => boolean, timeoutMs = 5_000, from = 0): Promise<LogLine> {
    const deadline = Date.now() + timeoutMs;
    let scanned = from;
    for (;;) {
      for (; scanned < this.logs.length; scanned++) {
        const l = this.logs[scanned]!;
        if (pred(l)) return l;
      }
      if (!this.alive) throw new Error(`agent exited (${this.exitCode}) before the awaited log line\n${this.stderrTail()}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no matching agent log line within ${timeoutMs} ms\n${this.stderrTail()}`);
      await new Promise<void>((res) => {
        const t = setTimeout(res, left);
        this.waiters.push(() => {
          clearTimeout(t);
          res();
        });
      });
    }
  }

  stderrTail(chars = 4000): string {
    return `--- agent stderr (tail) ---\n${this.stderrText.slice(-chars)}\n--- agent stdout ---\n${this.stdoutText.slice(-1000)}`;
  }

  /**
   * One scrape of /metrics: series key (`name{k="v",...}`, labels as exposed) ->
   * value. The counters are exact (logs may be rate-limited) and reflect every
   * datagram the agent processed before it answered: after a BARRIER=1 round
   * trip, everything sent before the barrier. The connection is not kept alive,
   * so it does not linger in the agent's fd table.
   */
  async metrics(): Promise<Map<string, number>> {
    if (this.httpPort < 0) throw new Error('this agent runs without its HTTP endpoint (--http off)');
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpGet({ host: '127.0.0.1', port: this.httpPort, path: '/metrics', agent: false }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => (res.statusCode === 200 ? resolve(text) : reject(new Error(`/metrics answered ${res.statusCode}: ${text}`))));
        res.on('error', reject);
      });
      req.on('error', reject);
    });
    const out = new Map<string, number>();
    for (const line of body.split('\n')) {
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$/.exec(line);
      if (m) out.set(m[1]!, Number(m[2]!.replace('Inf', 'Infinity')));
    }
    return out;
  }

  /** Entries of /proc/PID/fd: the agent's open fds right now. */
  fdCount(): number {
    return readdirSync(`/proc/${this.pid}/fd`).length;
  }

  /** CPU time the agent has used so far, in ms (utime + stime of /proc/PID/stat, USER_HZ 100). */
  cpuMs(): number {
    const stat = readFileSync(`/proc/${this.pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  }

  /**
   * Every registration in every epoll instance of the agent (/proc/PID/fdinfo of its
   * eventpoll fds: `tfd:` the fd number registered, `ino:` the inode of the file it
   * was registered with), each with `stale` set when the fd of that number now is
   * another file or none: a registration that outlived its store entry because the
   * file is still open elsewhere (epoll keys on file and number; it drops an entry
   * only when the file's last reference goes).
   */
  epollRegistrations(): { epfd: number; tfd: number; ino: bigint; stale: boolean }[] {
    const out: { epfd: number; tfd: number; ino: bigint; stale: boolean }[] = [];
    for (const [epfd, target] of this.fdTable()) {
      if (target !== 'anon_inode:[eventpoll]') continue;
      for (const m of readFileSync(`/proc/${this.pid}/fdinfo/${epfd}`, 'utf8').matchAll(/^tfd:\s*(\d+)\s.*\bino:([0-9a-f]+)/gm)) {
        const tfd = Number(m[1]);
        const ino = BigInt(`0x${m[2]}`);
        let now: bigint | null = null;
        try {
          now = statSync(`/proc/${this.pid}/fd/${tfd}`, { bigint: true }).ino;
        } catch {
          // no fd of that number now
        }
        out.push({ epfd, tfd, ino, stale: now !== ino });
      }
    }
    return out;
  }

  /** fd number -> readlink target ("socket:[123]", "/dev/null", "anon_inode:[eventpoll]"...). */
  fdTable(): Map<number, string> {
    const m = new Map<number, string>();
    for (const e of readdirSync(`/proc/${this.pid}/fd`)) {
      try {
        m.set(Number(e), readlinkSync(`/proc/${this.pid}/fd/${e}`));
      } catch {
        // closed between readdir and readlink
      }
    }
    return m;
  }

  /** The NOTIFY_SOCKET of a container. */
  notifyPath(container = this.containers[0]!): string {
    return join(this.runDir, container, 'notify');
  }

  get containers(): string[] {
    return this.opts.containers ?? ['app'];
  }

  /** Where a client of this agent runs: inside its PID namespace when it has one. */
  placement(user?: RunAs): Placement {
    return { user, nsPid: this.opts.pidns ? this.pid : undefined };
  }

  /** Runs `fdstore ARGS` as the agent's uid (the admin socket accepts only that uid). */
  cli(args: string[], user: RunAs | undefined = this.opts.user): Promise<RunResult> {
    return run(process.execPath, [FDSTORE_BIN, ...args], { placement: { user } });
  }

  /** `fdstore ls --run-dir DIR --json [--container NAME]`, parsed. */
  async ls(container?: string): Promise<LsJson> {
    const args = ['ls', '--run-dir', this.runDir, '--json', ...(container ? ['--container', container] : [])];
    const r = await this.cli(args);
    if (r.code !== 0) throw new Error(`fdstore ls exited ${r.code}: ${r.stderr}\n${this.stderrTail()}`);
    return JSON.parse(r.stdout) as LsJson;
  }

  /** Stored fd names of one container, sorted. */
  async names(container = this.containers[0]!): Promise<string[]> {
    const ls = await this.ls();
    return ls.fds.filter((f) => f.container === container).map((f) => f.fdname).sort();
  }

  /** SIGTERM, then the exit code of the spawned process (the agent's, through sh/unshare with pidns). */
  async stop(timeoutMs = 10_000): Promise<number | null> {
    if (!this.alive) return this.exitCode ?? null;
    process.kill(this.pid, 'SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return code;
  }

  /** Kills whatever is left and removes the temp dir. */
  async dispose(): Promise<void> {
    if (this.alive) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
      this.child.kill('SIGKILL');
      await this.exited;
    }
    rmSync(this.root, { recursive: true, force: true });
    roots.delete(this.root);
  }
}

/** Every tempRoot() of this test file not removed yet. */
const roots = new Set<string>();
// Registered while the importing test file is collected: runs after its last test,
// so a test that fails (or never disposes) leaves no /tmp/fdstore-t-* behind.
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
  roots.clear();
});

/** A fresh 0755 mkdtemp dir (other uids must traverse it); removed after the test file at the latest. */
export function tempRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'fdstore-t-'));
  chmodSync(root, 0o755);
  roots.add(root);
  return root;
}

export async function startAgent(opts: StartAgentOptions = {}): Promise<Agent> {
  const root = tempRoot();
  const runDir = join(root, 'run');
  mkdirSync(runDir, { mode: 0o755 });
  if (opts.user) chownSync(runDir, opts.user.uid, opts.user.gid);
  // Debug level: the tests observe every decision, routine ones (hang-up, duplicate) included.
  // HTTP on a kernel-chosen loopback port: the counters in /metrics are how tests
  // learn what the agent dropped (exact, unlike log lines, which are rate-limited
  // and arrive on another pipe than a barrier's answer).
  const args = [FDSTORE_BIN, 'agent', '--run-dir', runDir, '--http', '127.0.0.1:0', '--log-level', 'debug'];
  for (const c of opts.containers ?? ['app']) args.push('--container', c);
  if (opts.config !== undefined) {
    const file = join(root, 'config.yaml');
    writeFileSync(file, typeof opts.config === 'string' ? opts.config : stringify(opts.config), { mode: 0o644 });
    args.push('--config', file);
  }
  args.push(...(opts.args ?? []));
  let [file, argv] = place({ user: opts.user }, process.execPath, args);
  if (opts.pidns && !isRoot) throw new Error('an agent in a new PID namespace (unshare --pid) needs root: run the suite as root, as CI does');
  if (opts.nofile !== undefined) {
    // prlimit execs the command: the spawned pid stays the agent's (or setpriv's, which execs too).
    argv = [`--nofile=${opts.nofile}:${opts.nofile}`, '--', file, ...argv];
    file = 'prlimit';
  }
  if (opts.pidns) {
    // sh is pid 1 (the pod's pause process); the agent is its child, like a sidecar.
    argv = ['--pid', '--fork', '--mount-proc', '--kill-child', '--', 'sh', '-c', '"$@" & wait $!', 'sh', file, ...argv];
    file = 'unshare';
  }
  const child = spawn(file, argv, { env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  const agent = new Agent(child, root, runDir, opts);
  try {
    await agent.waitForLog((l) => l.msg === 'agent ready', opts.readyTimeoutMs ?? 15_000);
    const http = agent.logs.find((l) => l.msg === 'http listening');
    const port = typeof http?.address === 'string' ? /:(\d+)$/.exec(http.address)?.[1] : undefined;
    agent.httpPort = port === undefined ? -1 : Number(port);
    agent.pid = opts.pidns ? findPidnsAgent(child.pid!) : child.pid!;
  } catch (err) {
    await agent.dispose();
    throw err;
  }
  return agent;
}

function findPidnsAgent(unsharePid: number): number {
  const sh = childrenOf(unsharePid);
  const agent = sh.length === 1 ? childrenOf(sh[0]!) : [];
  if (agent.length !== 1) throw new Error(`cannot find the agent under unshare ${unsharePid}: sh=${sh} agent=${agent}`);
  return agent[0]!;
}
