/**
 * The HTTP endpoint on a real loopback socket: routes, status codes, one-line
 * bodies, HEAD, methods, a busy port, and --http parsing.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { Counter, Registry } from 'prom-client';
import type { Liveness } from '../../src/unit/run.js';
import { createLogger } from '../../src/log/log.js';
import { HttpServer, parseListen, type Probed } from '../../src/http/server.js';

const log = createLogger({ write: () => true }, 'error');
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

interface Probe extends Probed {
  ready: Liveness;
  live: Liveness;
}

async function serve(runs: Record<string, Probe>, health: Liveness = { ok: true, reason: 'ok' }) {
  const registry = new Registry();
  new Counter({ name: 'fdstore_test_total', help: 'A test counter.', registers: [registry] }).inc(3);
  const http = new HttpServer({ registry, log, health: () => health, run: (n) => (Object.hasOwn(runs, n) ? runs[n] : undefined) });
  const at = await http.start({ host: '127.0.0.1', port: 0 });
  closers.push(() => http.close());
  const base = `http://127.0.0.1:${at.port}`;
  const get = async (path: string, method = 'GET') => {
    const r = await fetch(base + path, { method });
    return { status: r.status, type: r.headers.get('content-type'), allow: r.headers.get('allow'), body: await r.text() };
  };
  return { get, registry, port: at.port };
}

function probe(ready: Liveness, live: Liveness = { ok: true, reason: 'ok' }): Probe {
  return {
    ready,
    live,
    readiness() {
      return this.ready;
    },
    liveness() {
      return this.live;
    },
  };
}

describe('HttpServer', () => {
  it('/metrics serves the registry with its content type', async () => {
    const { get, registry } = await serve({});
    const r = await get('/metrics');
    expect(r.status).toBe(200);
    expect(r.type).toBe(registry.contentType);
    expect(r.body).toContain('fdstore_test_total 3');
  });

  it('/healthz answers from the injected health', async () => {
    expect((await (await serve({})).get('/healthz')).status).toBe(200);
    const down = await serve({}, { ok: false, reason: 'notify socket disabled' });
    expect(await down.get('/healthz')).toMatchObject({ status: 503, body: 'notify socket disabled\n' });
  });

  it('/readyz/NAME and /livez/NAME follow the current run, with a one-line reason', async () => {
    const app = probe({ ok: false, reason: 'no READY=1 in this run yet' });
    const { get } = await serve({ app });
    expect(await get('/readyz/app')).toMatchObject({ status: 503, body: 'no READY=1 in this run yet\n', type: 'text/plain; charset=utf-8' });
    app.ready = { ok: true, reason: 'ready' };
    expect(await get('/readyz/app')).toMatchObject({ status: 200, body: 'ready\n' });
    expect(await get('/livez/app')).toMatchObject({ status: 200, body: 'ok\n' });
    app.live = { ok: false, reason: 'watchdog timeout (limit 1000 ms)' };
    expect(await get('/livez/app')).toMatchObject({ status: 503, body: 'watchdog timeout (limit 1000 ms)\n' });
    expect((await get('/readyz/app?x=1')).status).toBe(200);
  });

  it('404 for unknown containers and paths, without echoing the request', async () => {
    const { get } = await serve({ app: probe({ ok: true, reason: 'ready' }) });
    for (const p of ['/readyz/nope', '/livez/nope', '/readyz/toString', '/readyz', '/readyz/', '/readyz/app/x', '/', '/metricsx']) {
      const r = await get(p);
      expect(r.status, p).toBe(404);
      expect(r.body).not.toContain('nope');
    }
  });

  it('HEAD answers without a body; other methods get 405 with Allow', async () => {
    const { get } = await serve({ app: probe({ ok: true, reason: 'ready' }) });
    expect(await get('/readyz/app', 'HEAD')).toMatchObject({ status: 200, body: '' });
    expect(await get('/metrics', 'HEAD')).toMatchObject({ status: 200, body: '' });
    for (const m of ['POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS']) {
      expect(await get('/readyz/app', m)).toMatchObject({ status: 405, allow: 'GET, HEAD' });
    }
  });

  it('a busy port rejects start() with a message naming the address', async () => {
    const blocker = createServer();
    await new Promise<void>((res) => blocker.listen({ host: '127.0.0.1', port: 0 }, res));
    closers.push(() => new Promise((res) => blocker.close(() => res())));
    const port = (blocker.address() as { port: number }).port;
    const http = new HttpServer({ registry: new Registry(), log, health: () => ({ ok: true, reason: 'ok' }), run: () => undefined });
    await expect(http.start({ host: '127.0.0.1', port })).rejects.toMatchObject({
      code: 'EADDRINUSE',
      message: `cannot listen on 127.0.0.1:${port} (--http) for metrics and probes: address already in use; choose a free port or --http off`,
    });
    await http.close();
  });
});

describe('parseListen', () => {
  it('accepts HOST:PORT, [V6]:PORT and off', () => {
    expect(parseListen('0.0.0.0:9721')).toEqual({ host: '0.0.0.0', port: 9721 });
    expect(parseListen('localhost:80')).toEqual({ host: 'localhost', port: 80 });
    expect(parseListen('[::]:9721')).toEqual({ host: '::', port: 9721 });
    expect(parseListen('[::1]:0')).toEqual({ host: '::1', port: 0 });
    expect(parseListen('off')).toBeNull();
  });

  it('refuses anything else with a config error', () => {
    for (const v of ['', '9721', ':9721', '0.0.0.0', '0.0.0.0:', '0.0.0.0:65536', '::1:80', '0.0.0.0:port', 'OFF', '[::1]']) {
      expect(() => parseListen(v), v).toThrow(expect.objectContaining({ code: 'ECONFIG' }));
    }
  });
});
