/**
 * The real third-party clients, wrapped for tests:
 *  - NotifyClient: our C program on libsystemd (sd_pid_notify_with_fds, sd_notify_barrier)
 *  - pyNotify: python3-systemd's systemd.daemon.notify(state, fds=[...])
 *  - systemdNotify: systemd's own `systemd-notify` (sends BARRIER=1, speaks for its parent)
 */
import { LineProcess, PYTHON, REPO, run, type Placement, type RunResult } from '../proc.js';
import { buildClients } from './build.js';
import { join } from 'node:path';

/** C-escapes a state for notify_fds' whitespace-split command line (see unescape() there). */
export function escapeState(state: string): string {
  let out = '';
  for (const b of Buffer.from(state, 'utf8')) {
    out += b > 0x20 && b < 0x7f && b !== 0x5c ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** Compresses ids into notify_fds tokens ("3", "5-9"). */
function idTokens(ids: number[]): string[] {
  const toks: string[] = [];
  let i = 0;
  while (i < ids.length) {
    let j = i;
    while (j + 1 < ids.length && ids[j + 1] === ids[j]! + 1) j++;
    toks.push(j > i ? `${ids[i]}-${ids[j]}` : String(ids[i]));
    i = j + 1;
  }
  return toks;
}

function range(first: number, last: number): number[] {
  return Array.from({ length: last - first + 1 }, (_, k) => first + k);
}

export interface ClientOptions {
  /** NOTIFY_SOCKET. */
  socket: string;
  placement?: Placement;
  env?: NodeJS.ProcessEnv;
}

/** A running notify_fds (libsystemd) process; every method is one command and its answer. */
export class NotifyClient {
  private constructor(readonly proc: LineProcess) {}

  static start(opts: ClientOptions): NotifyClient {
    const { notifyFds } = buildClients();
    const env = { ...(opts.env ?? process.env), NOTIFY_SOCKET: opts.socket };
    return new NotifyClient(new LineProcess(notifyFds, [], { env, placement: opts.placement }));
  }

  /** Sends one command; returns the words after "ok"; throws on "err". */
  async cmd(line: string): Promise<string[]> {
    const answer = await this.proc.request(line);
    const words = answer.split(' ');
    if (words[0] !== 'ok') throw new Error(`notify_fds: ${line.slice(0, 200)} -> ${answer}`);
    return words.slice(1);
  }

  private async ids(line: string): Promise<number[]> {
    const [a, b] = (await this.cmd(line)).map(Number);
    return range(a!, b!);
  }

  /** n socketpairs (stream by default); returns the ids of the ends to send (peers kept). */
  socketpairs(n: number, type: 'stream' | 'dgram' | 'seqpacket' = 'stream'): Promise<number[]> {
    return this.ids(`socketpair ${n} ${type}`);
  }

  pipeRead(n: number): Promise<number[]> {
    return this.ids(`pipe-read ${n}`);
  }

  pipeWrite(n: number): Promise<number[]> {
    return this.ids(`pipe-write ${n}`);
  }

  async memfd(text: string): Promise<number> {
    return Number((await this.cmd(`memfd ${escapeState(text)}`))[0]);
  }

  async file(path: string, mode: 'ro' | 'wo' | 'rw' = 'ro'): Promise<number> {
    return Number((await this.cmd(`file ${path} ${mode}`))[0]);
  }

  async listen(kind: 'tcp-listen' | 'tcp6-listen' | 'udp'): Promise<{ id: number; port: number }> {
    const [id, port] = (await this.cmd(kind)).map(Number);
    return { id: id!, port: port! };
  }

  async unixListen(path: string): Promise<number> {
    return Number((await this.cmd(`unix-listen ${path}`))[0]);
  }

  /** sd_pid_notify_with_fds(0, 0, state, fds of ids); returns its return value (> 0 sent). */
  async notify(state: string, ids: number[] = []): Promise<number> {
    return Number((await this.cmd(['notify', escapeState(state), ...idTokens(ids)].join(' ')))[0]);
  }

  /** sd_notify_barrier(0, timeout): 1 when the agent acknowledged everything sent before it. */
  async barrier(timeoutMs = 5_000): Promise<number> {
    return Number((await this.cmd(`barrier ${timeoutMs}`))[0]);
  }

  /** A forked child of this process sends state+fds, then a barrier. */
  async child(state: string, ids: number[] = []): Promise<{ ret: number; barrier: number; pid: number }> {
    const [ret, barrier, pid] = (await this.cmd(['child', escapeState(state), ...idTokens(ids)].join(' '))).map(Number);
    return { ret: ret!, barrier: barrier!, pid: pid! };
  }

  /** Closes this process's copies of the sent ends. */
  async close(ids: number[]): Promise<void> {
    await this.cmd(['close', ...idTokens(ids)].join(' '));
  }

  /** Closes the peers (hang-up for the stored ends, once this process's own copies don't matter). */
  async closePeers(ids?: number[]): Promise<void> {
    await this.cmd(ids ? ['close-peer', ...idTokens(ids)].join(' ') : 'close-peers');
  }

  /** getpid() as the client sees it (its PID namespace's number). */
  async pid(): Promise<number> {
    return Number((await this.cmd('pid'))[0]);
  }

  async exit(): Promise<number | null> {
    await this.cmd('exit').catch(() => undefined);
    return this.proc.close();
  }
}

export const PY_NOTIFY = join(REPO, 'test', 'helpers', 'clients', 'py_notify.py');

export interface PyNotifyResult {
  ret: boolean;
  acked: boolean;
  pid: number;
}

/** python3-systemd notify(state, fds=[...]) then a barrier; the process stays to keep peers open. */
export async function pyNotify(
  opts: ClientOptions & { state: string; socketpairs?: number; memfd?: string[] },
): Promise<{ result: PyNotifyResult; proc: LineProcess }> {
  const args = [PY_NOTIFY, '--state', opts.state, '--socketpairs', String(opts.socketpairs ?? 0)];
  for (const t of opts.memfd ?? []) args.push('--memfd', t);
  const env = { ...(opts.env ?? process.env), NOTIFY_SOCKET: opts.socket };
  const proc = new LineProcess(PYTHON, args, { env, placement: opts.placement });
  const result = JSON.parse(await proc.nextLine()) as PyNotifyResult;
  return { result, proc };
}

/**
 * `systemd-notify ARGS` run from a shell (its parent, whose pid it speaks for),
 * as a pod's app would run it.
 */
export function systemdNotify(opts: ClientOptions & { args: string[] }): Promise<RunResult> {
  const env = { ...(opts.env ?? process.env), NOTIFY_SOCKET: opts.socket };
  return run('sh', ['-c', 'systemd-notify "$@"; exit $?', 'sh', ...opts.args], { env, placement: opts.placement });
}
