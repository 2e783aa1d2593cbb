/** A plain python notify receiver (receiver.py), to check clients without the agent. */
import { join } from 'node:path';
import { LineProcess, PYTHON, REPO } from './proc.js';

export interface Received {
  data: Buffer;
  text: string;
  pid: number;
  uid: number;
  gid: number;
  fds: string[];
  flags: number;
}

export class Receiver {
  readonly proc: LineProcess;

  private constructor(readonly path: string) {
    this.proc = new LineProcess(PYTHON, [join(REPO, 'test', 'helpers', 'receiver.py'), path]);
  }

  static async start(path: string): Promise<Receiver> {
    const r = new Receiver(path);
    await r.proc.nextLine();
    return r;
  }

  async next(timeoutMs = 5_000): Promise<Received> {
    const j = JSON.parse(await this.proc.nextLine(timeoutMs)) as Omit<Received, 'data' | 'text'> & { data: string };
    const data = Buffer.from(j.data, 'base64');
    return { ...j, data, text: data.toString('utf8') };
  }

  async stop(): Promise<void> {
    this.proc.child.kill('SIGTERM');
    await this.proc.exited;
  }
}
