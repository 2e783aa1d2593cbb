/**
 * Load on the app from the host, over loopback: a few clients, each a new
 * connection per request (a refused connect is what a dropped listening socket
 * looks like). Counts failures by kind and which server pids answered.
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
}

const CLIENTS = 4;
const PAUSE_MS = 2;
/** A queued connection waits for the next process: a restart here takes well under a second. */
const REQUEST_TIMEOUT_MS = 20_000;

export function failedCount(s: LoadStats): number {
  return Object.values(s.failed).reduce((a, b) => a + b, 0);
}

export class Load {
  readonly stats: LoadStats = { sent: 0, ok: 0, refused: 0, failed: {}, pids: new Map() };
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly port: number) {}

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
      const r = await getPid(this.port, REQUEST_TIMEOUT_MS);
      if (typeof r === 'number') {
        this.stats.ok++;
        this.stats.pids.set(r, (this.stats.pids.get(r) ?? 0) + 1);
      } else if (r === 'ECONNREFUSED') {
        this.stats.refused++;
      } else {
        this.stats.failed[r] = (this.stats.failed[r] ?? 0) + 1;
      }
      await sleep(PAUSE_MS);
    }
  }
}

/** GET / of demo/server.py: its pid, or why not. */
export function getPid(port: number, timeoutMs = 5000): Promise<number | string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
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

/** GET on the agent's endpoint: status and body. */
export function getStatus(port: number, path: string, timeoutMs = 5000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e: Error) => resolve({ status: 0, body: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e: Error) => resolve({ status: 0, body: e.message }));
    req.end();
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
