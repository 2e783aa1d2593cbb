/**
 * Keeper tests: a real fdstore-keeper and real agents (`node bin/fdstore.js agent
 * --keeper`) started again and again on one run dir, an app (app.py) storing and
 * removing on the notify socket, and the real launcher restoring into report.py.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Agent, tempRoot } from '../helpers/agent.js';
import { FDSTORE_BIN, LineProcess, PYTHON, REPO, run } from '../helpers/proc.js';
import { keeperSocketPath } from '../../src/unit/layout.js';

export const KEEPER_BIN = join(REPO, 'agent', 'keeper', 'fdstore-keeper');
const HERE = join(REPO, 'test', 'keeper');

/** Poll cond until true or the deadline (no sleeps as barriers: the condition is the barrier). */
export async function until(cond: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function fdCountOf(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

/**
 * Fds a child of this test process inherits besides stdio: those open here without
 * FD_CLOEXEC (a CI runner or shell may leave some). fdinfo's flags are octal.
 */
function inheritedFds(): number {
  let n = 0;
  for (const e of readdirSync('/proc/self/fd')) {
    const fd = Number(e);
    if (fd < 3) continue;
    try {
      const flags = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
      if (flags !== undefined && (parseInt(flags, 8) & 0o2000000) === 0) n++;
    } catch {
      // closed meanwhile (the readdir's own fd)
    }
  }
  return n;
}

export class Keeper {
  stderr = '';
  /** Its fds with nothing held and no agent connected: stdio, what it inherited, its listening socket. */
  readonly idleFds = 3 + inheritedFds() + 1;
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (this.stderr += d));
    this.exited = new Promise((res) => child.on('close', (code) => res(code)));
  }
  get pid(): number {
    return this.child.pid!;
  }
  fds(): number {
    return fdCountOf(this.pid);
  }
  async kill(): Promise<void> {
    this.child.kill('SIGKILL');
    await this.exited;
  }
}

export async function startKeeper(runDir: string, args: string[] = []): Promise<Keeper> {
  const k = new Keeper(spawn(KEEPER_BIN, ['--run-dir', runDir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }));
  const sock = keeperSocket(runDir);
  await until(() => k.stderr.includes('keeping up to') || k.child.exitCode !== null, 'the keeper to listen');
  if (!existsSync(sock)) throw new Error(`keeper did not start: ${k.stderr}`);
  return k;
}

export function keeperSocket(runDir: string): string {
  return keeperSocketPath(runDir);
}

/** One pod's run dir, served by agent after agent. */
export class Pod {
  readonly root = tempRoot();
  readonly runDir = join(this.root, 'run');
  agent: Agent | null = null;
  private readonly configFile = join(this.root, 'config.yaml');

  constructor(config: unknown = { containers: [{ name: 'app' }] }) {
    mkdirSync(this.runDir, { mode: 0o755 });
    writeFileSync(this.configFile, stringify(config));
  }

  /** A new agent on this run dir (with the keeper unless keeper is false). */
  async startAgent(opts: { keeper?: boolean; http?: boolean } = {}): Promise<Agent> {
    // One agent per pod at a time (the run dir's lock would refuse a second anyway).
    if (this.agent?.alive) throw new Error('Pod.startAgent: an agent is still running; killAgent() first');
    const args = [FDSTORE_BIN, 'agent', '--run-dir', this.runDir, '--config', this.configFile, '--http', opts.http ? '127.0.0.1:0' : 'off', '--log-level', 'info'];
    if (opts.keeper !== false) args.push('--keeper', keeperSocket(this.runDir));
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const a = new Agent(child, this.root, this.runDir, {});
    await a.waitForLog((l) => l.msg === 'agent ready', 20_000);
    a.pid = child.pid!;
    const http = a.logs.find((l) => l.msg === 'http listening');
    const port = typeof http?.address === 'string' ? /:(\d+)$/.exec(http.address)?.[1] : undefined;
    a.httpPort = port === undefined ? -1 : Number(port);
    this.agent = a;
    return a;
  }

  async killAgent(): Promise<void> {
    const a = this.agent;
    if (!a) return;
    this.agent = null;
    process.kill(a.pid, 'SIGKILL');
    await a.exited;
  }

  notifyPath(container = 'app'): string {
    return join(this.runDir, container, 'notify');
  }

  /** `fdstore ls --json`: (name, inode) of the stored fds, sorted. */
  async stored(container = 'app'): Promise<string[]> {
    const ls = await this.agent!.ls(container);
    return ls.fds.map((f) => `${f.fdname}/${f.inode}`).sort();
  }

  /** The launcher into report.py: what a restarted app gets, as sorted name/inode. */
  async restore(container = 'app'): Promise<{ listen: string[]; stored: string[]; raw: string }> {
    const r = await run(join(this.runDir, container, 'fdstore-exec'), ['--', PYTHON, join(HERE, 'report.py')], {
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
    });
    if (r.code !== 0) throw new Error(`restore failed (${r.code}): ${r.stderr}`);
    const rep = JSON.parse(r.stdout) as { fds: { name: string; ino: number }[] };
    return { listen: [], stored: rep.fds.map((f) => `${f.name}/${f.ino}`).sort(), raw: r.stdout };
  }
}

export interface AppAnswer {
  ok: boolean;
  inodes?: number[];
  acked?: boolean;
  errno?: number;
  error?: string;
}

export class App {
  readonly proc = new LineProcess(PYTHON, [join(HERE, 'app.py')]);
  constructor(private readonly path: string) {}

  async cmd(c: Record<string, unknown>): Promise<AppAnswer> {
    const a = JSON.parse(await this.proc.request(JSON.stringify({ path: this.path, ...c }))) as AppAnswer;
    if (a.error) throw new Error(`app.py: ${a.error}`);
    return a;
  }

  store(name: string, n: number, kind: 'memfd' | 'sock' = 'memfd'): Promise<AppAnswer> {
    return this.cmd({ op: 'store', name, n, kind });
  }

  remove(name: string): Promise<AppAnswer> {
    return this.cmd({ op: 'remove', name });
  }

  async barrier(timeoutMs = 5000): Promise<boolean> {
    return (await this.cmd({ op: 'barrier', timeoutMs })).acked === true;
  }

  async exit(): Promise<void> {
    await this.proc.request(JSON.stringify({ op: 'exit' })).catch(() => undefined);
    await this.proc.close();
  }
}

/** The store as a model: name -> inodes; `entries()` in the form Pod.stored() returns. */
export class Model {
  readonly byName = new Map<string, number[]>();
  store(name: string, inodes: readonly number[]): void {
    this.byName.set(name, [...(this.byName.get(name) ?? []), ...inodes]);
  }
  remove(name: string): void {
    this.byName.delete(name);
  }
  entries(): string[] {
    return [...this.byName].flatMap(([n, inos]) => inos.map((i) => `${n}/${i}`)).sort();
  }
  get size(): number {
    let n = 0;
    for (const v of this.byName.values()) n += v.length;
    return n;
  }
  clone(): Model {
    const m = new Model();
    for (const [k, v] of this.byName) m.byName.set(k, [...v]);
    return m;
  }
}
