/**
 * Hostile datagrams: every byte, fd and credential chosen by the test (raw.py
 * does the sendmsg; Node cannot send SCM_RIGHTS on a datagram socket).
 */
import { join } from 'node:path';
import { LineProcess, PYTHON, REPO, type Placement } from './proc.js';

export type RawFd = 'socketpair' | 'pipe-r' | 'pipe-w' | 'memfd' | 'devnull' | 'tcp-listen' | { dup: number };

export interface RawSend {
  /** Payload: a string is sent as UTF-8, a Buffer as is. */
  data: string | Buffer;
  fds?: RawFd[];
  /** Explicit SCM_CREDENTIALS [pid, uid, gid] (the kernel checks them against the sender's privileges). */
  creds?: [number, number, number];
}

interface RawAnswer {
  ok: boolean;
  error?: string;
  errno?: number;
  acked?: boolean;
  bytes?: number;
}

export class RawSender {
  readonly proc: LineProcess;

  constructor(readonly path: string, placement?: Placement) {
    this.proc = new LineProcess(PYTHON, [join(REPO, 'test', 'helpers', 'raw.py')], { placement });
  }

  private async req(r: object): Promise<RawAnswer> {
    const a = JSON.parse(await this.proc.request(JSON.stringify(r))) as RawAnswer;
    if (!a.ok) throw new Error(`raw.py: ${a.error} (errno ${a.errno})`);
    return a;
  }

  /** Sends one datagram; resolves with the number of payload bytes sent. */
  async send(m: RawSend): Promise<number> {
    const data = (typeof m.data === 'string' ? Buffer.from(m.data, 'utf8') : m.data).toString('base64');
    const a = await this.req({ op: 'send', path: this.path, data, fds: m.fds ?? [], creds: m.creds ?? null });
    return a.bytes!;
  }

  /** BARRIER=1 + a pipe's write end, then waits for POLLHUP: true when acknowledged. */
  async barrier(timeoutMs = 5_000): Promise<boolean> {
    return (await this.req({ op: 'barrier', path: this.path, timeoutMs })).acked === true;
  }

  async closePeers(): Promise<void> {
    await this.req({ op: 'close-peers' });
  }

  async exit(): Promise<void> {
    await this.proc.request(JSON.stringify({ op: 'exit' })).catch(() => undefined);
    await this.proc.close();
  }
}
