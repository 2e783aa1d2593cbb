/**
 * Restore-test helpers: apps behind the real fdstore-exec of a real agent
 * (test/helpers/agent.ts starts the agent). The consumer is a libsystemd program
 * (consumer.c); py_consumer.py is python3-systemd.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeAll } from 'vitest';
import { startAgent, type Agent } from '../helpers/agent.js';
import { LineProcess, PYTHON, REPO, type Placement } from '../helpers/proc.js';

export const HERE = join(REPO, 'test', 'restore');
const BUILD_DIR = join(REPO, 'test', '.build');

/** gcc + libsystemd into test/.build/restore_consumer, once per source change (temp + rename: parallel files). */
export function buildConsumer(): string {
  const src = join(HERE, 'consumer.c');
  const out = join(BUILD_DIR, 'restore_consumer');
  if (existsSync(out) && statSync(out).mtimeMs >= statSync(src).mtimeMs) return out;
  mkdirSync(BUILD_DIR, { recursive: true, mode: 0o755 });
  const flags = execFileSync('pkg-config', ['--cflags', '--libs', 'libsystemd'], { encoding: 'utf8' }).trim().split(/\s+/);
  const tmp = `${out}.${process.pid}.tmp`;
  execFileSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', tmp, src, ...flags.filter((f) => f !== '')], { stdio: 'inherit' });
  chmodSync(tmp, 0o755);
  renameSync(tmp, out);
  return out;
}

/** The launcher the agent copied into the container directory. */
export function launcherOf(agent: Agent, container = 'app'): string {
  return join(agent.runDir, container, 'fdstore-exec');
}

/** A clean environment: nothing of the test runner's LISTEN_* / NOTIFY_SOCKET leaks in. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? '/usr/bin:/bin', ...extra };
}

export interface FdReport {
  fd: number;
  name: string;
  kind: string;
  nonblock: boolean;
  data: string;
}

export interface ConsumerReport {
  pid: number;
  n: number;
  fds: FdReport[];
}

/** consumer.c behind the launcher: first line is its report, then one line per command. */
export class Consumer {
  readonly proc: LineProcess;
  report!: ConsumerReport;

  constructor(launcher: string, consumer: string, opts: { placement?: Placement; launcherArgs?: string[]; env?: NodeJS.ProcessEnv } = {}) {
    this.proc = new LineProcess(launcher, [...(opts.launcherArgs ?? []), '--', consumer], {
      env: opts.env ?? cleanEnv(),
      placement: opts.placement,
    });
  }

  static async start(agent: Agent, consumer: string, opts: { placement?: Placement; launcherArgs?: string[] } = {}): Promise<Consumer> {
    const c = new Consumer(launcherOf(agent), consumer, opts);
    await c.ready();
    return c;
  }

  async ready(timeoutMs = 20_000): Promise<ConsumerReport> {
    this.report = JSON.parse(await this.proc.nextLine(timeoutMs)) as ConsumerReport;
    return this.report;
  }

  /** Sends a command; throws unless the answer starts with "ok". */
  async cmd(line: string, timeoutMs?: number): Promise<string> {
    const a = await this.proc.request(line, timeoutMs);
    if (!a.startsWith('ok')) throw new Error(`consumer: ${line} -> ${a}; stderr: ${this.proc.stderrText}`);
    return a;
  }

  byName(name: string): FdReport[] {
    return this.report.fds.filter((f) => f.name === name);
  }

  /** Store everything sent so far for sure (sd_notify_barrier), then exit and wait. */
  async exit(): Promise<number | null> {
    await this.cmd('barrier');
    this.proc.child.stdin!.write('exit\n');
    return this.proc.close();
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<number | null> {
    this.proc.child.kill(signal);
    return this.proc.exited;
  }
}

export interface PyReport {
  pid: number;
  fds: number[];
  names: Record<string, string>;
  data: Record<string, string>;
}

/** python3-systemd behind the launcher; resolves with its one report line. */
export function runPyConsumer(agent: Agent): Promise<{ code: number | null; report: PyReport; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(launcherOf(agent), ['--', PYTHON, join(HERE, 'py_consumer.py')], { env: cleanEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve({ code, report: JSON.parse(out) as PyReport, stderr: err });
      } catch (e) {
        reject(new Error(`py_consumer (${code}): ${out} ${err} ${(e as Error).message}`));
      }
    });
  });
}

/** A TCP port free right now on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (typeof a === 'object' && a ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls until pred() holds (or throws after timeoutMs). */
export async function until(pred: () => boolean | Promise<boolean>, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/**
 * Waits until every load has had `n` more answers than at the call: requests are
 * flowing through the process serving now. The point to restart it under load,
 * rather than a sleep that serves few requests on a loaded machine.
 */
export async function servedMore(loads: ReadonlyArray<{ stats: { ok: number } }>, n: number, timeoutMs = 30_000): Promise<void> {
  const from = loads.map((l) => l.stats.ok);
  await until(() => loads.every((l, i) => l.stats.ok >= from[i]! + n), timeoutMs, `${n} more answers on each of ${loads.length} loads`);
}

/** `ls --json` state of one container. */
export async function containerState(agent: Agent, name = 'app'): Promise<Record<string, unknown>> {
  const ls = await agent.ls(name);
  const c = ls.containers.find((x) => x.name === name);
  if (!c) throw new Error(`no container ${name} in ls`);
  return c;
}

/** Waits until the container's run has ended (main process gone, pidfd closed). */
export async function waitExited(agent: Agent, name = 'app'): Promise<void> {
  await until(async () => (await containerState(agent, name)).state === 'exited', 10_000, `${name} state exited`);
}

/** An agent with one container `app` of the given fileDescriptorStoreMax, disposed after the test. */
export async function agentWithMax(agents: Agent[], max: number): Promise<Agent> {
  const a = await startAgent({ config: { containers: [{ name: 'app', fileDescriptorStoreMax: max }] } });
  agents.push(a);
  return a;
}

/**
 * A restore test file's shared setup: the libsystemd consumer, built once per file,
 * and an agent list emptied (each disposed) after every test.
 */
export function restoreFixture(): { readonly agents: Agent[]; readonly consumer: string } {
  const agents: Agent[] = [];
  let consumer = '';
  beforeAll(() => {
    consumer = buildConsumer();
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.dispose();
  });
  return {
    agents,
    get consumer() {
      return consumer;
    },
  };
}
