/**
 * The real agent with its HTTP endpoint on a free loopback port (the shared
 * startAgent helper passes `--listen off`; a later --listen wins).
 */
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { startAgent, type Agent, type StartAgentOptions } from '../helpers/agent.js';
import { REPO } from '../helpers/proc.js';

export interface HttpAgent {
  agent: Agent;
  port: number;
  get(path: string): Promise<{ status: number; body: string }>;
  scrape(): Promise<string>;
}

/** A port free right now on 127.0.0.1 (bind 0, read it, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '127.0.0.1', port: 0 }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** The e2e tests run bin/fdstore.js, i.e. dist/: built by `npm run build`. */
export function requireBuild(): void {
  if (!existsSync(join(REPO, 'dist', 'http', 'server.js'))) {
    throw new Error('dist/ has no HTTP server: run `npx tsc -p tsconfig.build.json` (npm run build) first');
  }
}

export async function startHttpAgent(opts: StartAgentOptions = {}): Promise<HttpAgent> {
  requireBuild();
  const port = await freePort();
  const agent = await startAgent({ ...opts, args: [...(opts.args ?? []), '--http', `127.0.0.1:${port}`] });
  const get = async (path: string) => {
    const r = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: r.status, body: await r.text() };
  };
  const scrape = async () => {
    const r = await get('/metrics');
    if (r.status !== 200) throw new Error(`/metrics answered ${r.status}: ${r.body}`);
    return r.body;
  };
  return { agent, port, get, scrape };
}

/** Polls until check() returns a value that is not undefined. */
export async function until<T>(check: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
