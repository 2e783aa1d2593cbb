/**
 * The HTTP endpoint's connection cap (issue 7 item 1) on a real loopback socket:
 * idle connections beyond it are closed by the server at once, the process's fd
 * count grows by the cap at most, and a slot freed serves a probe again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/log/log.js';
import { HTTP_MAX_CONNECTIONS, HttpServer } from '../../src/http/server.js';
import { countFds } from '../../src/native/sys.js';

const log = createLogger({ write: () => true }, 'error');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

/** An idle connection; `closedByServer` resolves when the server ends it. */
function idle(port: number): Promise<{ sock: Socket; closedByServer: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    const closedByServer = new Promise<void>((r) => sock.once('close', () => r()));
    // Read it: a paused socket never emits 'end' (nor 'close') for the server's FIN.
    sock.resume();
    sock.on('error', () => {}); // ECONNRESET from the server's close
    sock.once('connect', () => resolve({ sock, closedByServer }));
    sock.once('error', reject);
  });
}

describe('HttpServer connection cap', () => {
  it('the default cap is the one counted in the fd budget', () => {
    expect(HTTP_MAX_CONNECTIONS).toBe(64);
  });

  it('holds at most maxConnections open; each connection past the cap evicts the oldest idle one', async () => {
    const cap = 20;
    const extra = 30;
    const http = new HttpServer({ registry: new Registry(), log, health: () => ({ ok: true, reason: 'ok' }), run: () => undefined, maxConnections: cap });
    const { port } = await http.start({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => http.close());
    const before = countFds();

    const conns: Array<{ sock: Socket; closedByServer: Promise<void> }> = [];
    cleanups.push(() => conns.forEach((c) => c.sock.destroy()));
    for (let i = 0; i < cap + extra; i++) conns.push(await idle(port));
    // The oldest `extra` were evicted, in order; the newest `cap` are held.
    await Promise.all(conns.slice(0, extra).map((c) => c.closedByServer));
    // Both ends live in this process: each held connection costs 2 fds.
    expect(countFds() - before).toBeLessThanOrEqual(2 * cap + 4);
    // A probe is served while the cap is full of idle connections (an agent that
    // refused it would fail the kubelet's probes and restart a healthy app).
    const r = await fetch(`http://127.0.0.1:${port}/healthz`);
    expect(r.status).toBe(200);
    expect(countFds() - before).toBeLessThanOrEqual(2 * cap + 4);
  });

  it('never evicts a connection with a request in progress', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let entered!: () => void;
    const inHandler = new Promise<void>((r) => (entered = r));
    // /metrics awaits the registry: a slow collect holds the request open.
    const registry = new Registry();
    registry.metrics = async () => {
      entered();
      await gate;
      return 'x 1\n';
    };
    const http = new HttpServer({ registry, log, health: () => ({ ok: true, reason: 'ok' }), run: () => undefined, maxConnections: 1 });
    const { port } = await http.start({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => http.close());
    const scrape = fetch(`http://127.0.0.1:${port}/metrics`);
    await inHandler;
    const late = await idle(port);
    await late.closedByServer; // the newcomer goes, the busy scrape stays
    release();
    const r = await scrape;
    expect(r.status).toBe(200);
    expect(await r.text()).toBe('x 1\n');
  });

  it('closes a connection that never sends a byte once idle longer than the socket timeout', async () => {
    // (headersTimeout does not cover it on Node 20: only a started request is checked.)
    const http = new HttpServer({
      registry: new Registry(), log, health: () => ({ ok: true, reason: 'ok' }), run: () => undefined,
      timeouts: { headersMs: 600_000, requestMs: 0, checkMs: 60_000, idleMs: 100 },
    });
    const { port } = await http.start({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => http.close());
    const c = await idle(port);
    cleanups.push(() => void c.sock.destroy());
    await c.closedByServer;
  });
});
