/**
 * peer.py from a test: a process that connects to a real agent's restore socket
 * and reads exactly as told (never, k messages, everything), and sends notify
 * datagrams with plain sendmsg right before it connects.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Agent } from '../helpers/agent.js';
import { LineProcess, PYTHON } from '../helpers/proc.js';
import { HERE } from './harness.js';

export interface Send {
  data: string;
  /** Fresh unbound AF_UNIX datagram sockets attached: an inode each (no duplicate), never a hang-up. */
  fds?: number;
}

export interface PeerRestore {
  /** fds= of the header (null: no header came). */
  header: number | null;
  names: string[];
  fds: number;
  /** "E", "X reason", "eof" or "error ...". */
  end: string;
}

export class RestorePeer {
  readonly proc: LineProcess;

  constructor(agent: Agent, container = 'app') {
    this.proc = new LineProcess(PYTHON, [join(HERE, 'peer.py'), join(agent.runDir, container)]);
  }

  get pid(): number {
    return this.proc.pid;
  }

  private async req<T>(r: object, timeoutMs = 30_000): Promise<T> {
    const a = JSON.parse(await this.proc.request(JSON.stringify(r), timeoutMs)) as { ok: boolean; error?: string } & T;
    if (!a.ok) throw new Error(`peer.py ${JSON.stringify(r).slice(0, 200)}: ${a.error ?? 'failed'}; stderr: ${this.proc.stderrText}`);
    return a;
  }

  async send(data: string, fds = 0): Promise<void> {
    await this.req({ op: 'send', data, fds });
  }

  /** BARRIER=1: resolves once the agent applied every datagram this peer sent before. */
  async barrier(): Promise<void> {
    await this.req({ op: 'barrier' });
  }

  /** Opens n restore connections and reads none of them. */
  async connect(n: number): Promise<number> {
    return (await this.req<{ open: number }>({ op: 'connect', n })).open;
  }

  /** Reads msgs messages (the header counts as one) of connection i. */
  read(i: number, msgs: number): Promise<{ msgs: number; fds: number; names: number; kinds: string[]; header: number | null }> {
    return this.req({ op: 'read', i, msgs });
  }

  /** Reads every open connection to its end, in order, and closes them. */
  async readAll(): Promise<PeerRestore[]> {
    return (await this.req<{ restores: PeerRestore[] }>({ op: 'read-all' })).restores;
  }

  /** The sends, then k connections at once, then readAll: no round trip between them. */
  async step(sends: Send[], k: number): Promise<PeerRestore[]> {
    return (await this.req<{ restores: PeerRestore[] }>({ op: 'step', sends, k })).restores;
  }

  async close(i?: number): Promise<void> {
    await this.req(i === undefined ? { op: 'close' } : { op: 'close', i });
  }

  /** A thread restoring k at a time until backgroundStop(). */
  async background(k: number): Promise<void> {
    await this.req({ op: 'background', k });
  }

  async backgroundStop(): Promise<Record<string, number>> {
    return (await this.req<{ ends: Record<string, number> }>({ op: 'background-stop' })).ends;
  }

  kill(): Promise<number | null> {
    this.proc.child.kill('SIGKILL');
    return this.proc.exited;
  }

  async exit(): Promise<void> {
    await this.proc.request(JSON.stringify({ op: 'exit' })).catch(() => undefined);
    await this.proc.close();
  }
}

/** VmRSS of a process in bytes (/proc/PID/status). */
export function rssBytes(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]) * 1024;
}

/** FDNAME values of 255 bytes (FDNAME_MAX): a restore of 2,000 of them does not fit a socket buffer. */
export function longName(i: number): string {
  const p = `long${i}-`;
  return p + 'x'.repeat(255 - p.length);
}

/**
 * Stores n fds named longName(k) for k = 0, 1, ... (per 250-fd datagram),
 * then a barrier. Returns the names in store order.
 */
export async function storeLong(peer: RestorePeer, n: number, perName = 250): Promise<string[]> {
  const names: string[] = [];
  for (let k = 0; names.length < n; k++) {
    const m = Math.min(perName, n - names.length);
    await peer.send(`FDSTORE=1\nFDNAME=${longName(k)}`, m);
    for (let j = 0; j < m; j++) names.push(longName(k));
  }
  await peer.barrier();
  return names;
}
