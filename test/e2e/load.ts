/**
 * Load on the demo app from outside its pod: a few clients, each a new connection
 * per request (a refused connect is what a dropped listening socket looks like).
 * Counts failures by kind and which server pids answered.
 */
import { request } from 'node:http';

export interface LoadStats {
  sent: number;
  ok: number;
  refused: number;
  /** Other failures by error code (ECONNRESET, ETIMEDOUT, HTTP status...). */
  failed: Record<string, number>;
  /** Server pids that answered ("pid N" bodies), with counts. */
  pids: Map<number, number>;
  /** The longest a request took, in ms (a connection that waited in the backlog for a restart). */
  slowestMs: number;
}

export interface Target {
  host: string;
  port: number;
}

const CLIENTS = 4;
const PAUSE_MS = 2;

export function failedCount(s: LoadStats): number {
  return Object.values(s.failed).reduce((a, b) => a + b, 0);
}

export class Load {
  readonly stats: LoadStats = { sent: 0, ok: 0, refused: 0, failed: {}, pids: new Map(), slowestMs: 0 };
  private running = false;
  private loop: Promise<void> | null = null;

  /**
   * requestTimeoutMs: a connection queued in the stored socket's backlog waits for the
   * next process, which after a few restarts is the kubelet's back-off (up to 5 min).
   */
  constructor(private readonly target: Target, private readonly requestTimeoutMs: number) {}

  start(clients = CLIENTS): void {
    this.running = true;
    this.loop = Promise.all(Array.from({ length: clients }, () => this.client())).then(() => undefined);
  }

  async stop(): Promise<LoadStats> {
    this.running = false;
    await this.loop;
    this.loop = null;
    return this.stats;
  }

  private async client(): Promise<void> {
    while (this.running) {
      this.stats.sent++;
      const t0 = performance.now();
      const r = await getPid(this.target, this.requestTimeoutMs);
      this.stats.slowestMs = Math.max(this.stats.slowestMs, performance.now() - t0);
      if (typeof r === 'number') {
        this.stats.ok++;
        this.stats.pids.set(r, (this.stats.pids.get(r) ?? 0) + 1);
      } else if (r === 'ECONNREFUSED') {
        this.stats.refused++;
      } else {
        this.stats.failed[r] = (this.stats.failed[r] ?? 0) + 1;
      }
      await new Promise((res) => setTimeout(res, PAUSE_MS));
    }
  }
}

/** GET / of demo/server.py: its pid, or why not. */
export function getPid(t: Target, timeoutMs = 5000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: t.host, port: t.port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => {
        const m = /^pid (\d+)$/m.exec(body);
        resolve(res.statusCode === 200 && m ? Number(m[1]) : `HTTP ${res.statusCode}`);
      });
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    req.end();
  });
}
