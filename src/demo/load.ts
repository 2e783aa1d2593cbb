/**
 * The demo's load generator: a few clients, each one request at a time as fast as
 * the server answers (with a short pause), counting failures by kind. A refused connection means no
 * socket was listening; a reset or timeout means an accepted request was lost.
 */
import { request } from 'node:http';

export interface LoadStats {
  sent: number;
  ok: number;
  refused: number;
  other: number;
}

/** Pause between requests: about 300-400 requests/s against a local server. */
const PAUSE_MS = 2;
/**
 * A request queued in the kept listening socket waits for the next process: on a
 * loaded machine a start takes seconds. Lost requests show up as resets, not as
 * slowness, so the bound is generous.
 */
const REQUEST_TIMEOUT_MS = 30_000;
/** Clients requesting at once: a restart then has requests in flight and queued. */
const LOAD_CLIENTS = 4;

export class Load {
  readonly stats: LoadStats = { sent: 0, ok: 0, refused: 0, other: 0 };
  private running = false;
  private loop: Promise<void> | null = null;

  constructor(private readonly port: number) {}

  start(concurrency = LOAD_CLIENTS): void {
    this.running = true;
    this.loop = Promise.all(Array.from({ length: concurrency }, () => this.run())).then(() => undefined);
  }

  async stop(): Promise<LoadStats> {
    this.running = false;
    await this.loop;
    return this.stats;
  }

  private async run(): Promise<void> {
    while (this.running) {
      this.stats.sent++;
      const r = await get(this.port);
      if (r === 'ok') this.stats.ok++;
      else if (r === 'ECONNREFUSED') this.stats.refused++;
      else this.stats.other++;
      await sleep(PAUSE_MS);
    }
  }
}

function get(port: number): Promise<string> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path: '/', agent: false, timeout: REQUEST_TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200 ? 'ok' : `HTTP ${res.statusCode}`));
      res.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    req.on('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    req.end();
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
