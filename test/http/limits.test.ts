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
    sock.on('error', () => {}); // ECONNRESET from the server's close
    sock.once('connect', () => resolve({ sock, closedByServer }));
    sock.once('error', reject);
  });
}

describe('HttpServer connection cap', () => {
  it('the default cap is the one counted in the fd budget', () => {
    expect(HTTP_MAX_CONNECTIONS).toBe(64);
  });

  it('holds at most maxConnections open; the rest are closed at once; a freed slot serves again', async () => {
    const cap = 20;
    const extra = 30;
    const http = new HttpServer({ registry: new Registry(), log, health: () => ({ ok: true, reason: 'ok' }), run: () => undefined, maxConnections: cap });
    const { port } = await http.start({ host: '127.0.0.1', port: 0 });
    cleanups.push(() => http.close());
    const before = countFds();

    const conns: Array<{ sock: Socket; closedByServer: Promise<void> }> = [];
    cleanups.push(() => conns.forEach((c) => c.sock.destroy()));
    for (let i = 0; i < cap; i++) conns.push(await idle(port));
    // The server accepted every one of these before it closes any later one (accept order).
    const over: Array<{ sock: Socket; closedByServer: Promise<void> }> = [];
    for (let i = 0; i < extra; i++) over.push(await idle(port));
    conns.push(...over);
    await Promise.all(over.map((c) => c.closedByServer));

    // Both ends live in this process: each held connection costs 2 fds, each refused one none.
    expect(countFds() - before).toBeLessThanOrEqual(2 * cap + 4);

    // A probe waits for a slot, not forever: free one and it is served.
    conns[0]!.sock.destroy();
    await conns[0]!.closedByServer;
    for (;;) {
      const r = await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null);
      if (r) {
        expect(r.status).toBe(200);
        break;
      }
    }
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
