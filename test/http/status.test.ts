/**
 * GET /status on the real HttpServer over loopback, in-process so the test sees
 * the waiters and the fd table: the long-poll outlives the idle socket timeout,
 * a client that goes away frees its waiter and its socket, close() does not wait
 * for waiters, HEAD, and the query rules. The state comes from a real Container.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type Socket } from 'node:net';
import { request } from 'node:http';
import { Registry } from 'prom-client';
import { createLogger } from '../../src/log/log.js';
import { HttpServer, type HttpTimeouts } from '../../src/http/server.js';
import { parseStatusQuery, type StatusRequestKind } from '../../src/http/status.js';
import { agentInfo, StatusService } from '../../src/status/service.js';
import { staticConfigSource } from '../../src/status/config-static.js';
import { FdTypeCache } from '../../src/status/fdtypes.js';
import { STATUS_WAIT_MAX_SEC, STATUS_WAITERS_MAX, type AgentStatus } from '../../src/status/types.js';
import { Container } from '../../src/unit/container.js';
import { DEFAULTS } from '../../src/config/types.js';
import { countFds } from '../../src/native/sys.js';

const log = createLogger({ write: () => true }, 'error');
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

interface Served {
  port: number;
  status: StatusService;
  c: Container;
  kinds: StatusRequestKind[];
  http: HttpServer;
}

async function serve(timeouts: Partial<HttpTimeouts> = {}): Promise<Served> {
  let id = 0;
  const c = new Container({ ...DEFAULTS, name: 'app' }, { sameFile: () => false, pollAdd: () => 0, pollDel: () => {}, close: () => {}, nextId: () => ++id }, performance.now());
  const status = new StatusService({
    containers: () => [c],
    container: (n) => (n === 'app' ? c : undefined),
    config: staticConfigSource('containers: []\n', new Date()),
    agent: agentInfo('test', new Date()),
    types: new FdTypeCache(() => 'unix', () => new Promise((r) => setImmediate(r))),
    nowMs: () => performance.now(),
    wallMs: Date.now,
    timers: { set: (fn, ms) => setTimeout(fn, ms), clear: (t) => clearTimeout(t) },
  });
  status.seed();
  const kinds: StatusRequestKind[] = [];
  const http = new HttpServer({
    registry: new Registry(),
    log,
    health: () => ({ ok: true, reason: 'ok' }),
    run: () => undefined,
    status,
    statusRequest: (k) => kinds.push(k),
    timeouts,
  });
  const { port } = await http.start({ host: '127.0.0.1', port: 0 });
  cleanups.push(() => http.close());
  return { port, status, c, kinds, http };
}

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(port: number, path: string, method = 'GET'): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

async function until(pred: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!pred()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A raw connection with a long-poll sent on it (the test decides when it goes away). */
function rawPoll(port: number, path: string): Promise<{ sock: Socket; closed: Promise<void>; data: () => string }> {
  return new Promise((resolve, reject) => {
    const sock = connect({ host: '127.0.0.1', port });
    let data = '';
    sock.setEncoding('utf8').on('data', (d: string) => (data += d));
    const closed = new Promise<void>((r) => sock.once('close', () => r()));
    sock.on('error', () => {});
    sock.once('connect', () => {
      sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
      resolve({ sock, closed, data: () => data });
    });
    sock.once('error', reject);
  });
}

describe('GET /status', () => {
  it('answers the status as JSON at once, and HEAD with the same headers and no body', async () => {
    const s = await serve();
    const r = await get(s.port, '/status');
    expect(r.status).toBe(200);
    expect(r.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(r.headers['cache-control']).toBe('no-store');
    expect(r.headers['fdstore-wait']).toBe('none');
    const body = JSON.parse(r.body) as AgentStatus;
    expect(body.generation).toBe(1);
    expect(body.containers.map((c) => c.name)).toEqual(['app']);
    expect(body.config.hash).toMatch(/^[0-9a-f]{64}$/);
    const h = await get(s.port, '/status', 'HEAD');
    expect(h.status).toBe(200);
    expect(h.body).toBe('');
    expect(h.headers['content-length']).toBe(String(Buffer.byteLength(r.body)));
    expect(s.kinds).toEqual(['now', 'now']);
  });

  it('a long-poll outlives the server idle and request timeouts, and answers with the same generation', async () => {
    const s = await serve({ idleMs: 150, requestMs: 150, headersMs: 150, checkMs: 20 });
    const r = await get(s.port, '/status?after=1&wait=1');
    expect(r.status).toBe(200);
    expect(r.headers['fdstore-wait']).toBe('timeout');
    expect((JSON.parse(r.body) as AgentStatus).generation).toBe(1);
    expect(s.kinds).toEqual(['waited']);
    // Idle connections are still cut at the idle limit.
    const idle = connect({ host: '127.0.0.1', port: s.port });
    idle.on('error', () => {});
    // Read it: a paused socket never emits 'end' (nor 'close') for the server's FIN.
    idle.resume();
    await new Promise<void>((res) => idle.once('close', () => res()));
  });

  it('a change answers a waiting request with the new status', async () => {
    const s = await serve();
    const poll = get(s.port, '/status?after=1&wait=30');
    await until(() => s.status.waiting === 1, 'the request to wait');
    s.c.run.status = 'serving';
    s.status.observer.accepted('app');
    const r = await poll;
    expect(r.headers['fdstore-wait']).toBe('changed');
    const body = JSON.parse(r.body) as AgentStatus;
    expect(body.generation).toBe(2);
    expect(body.containers[0]!.status).toBe('serving');
  });

  it(`holds ${STATUS_WAITERS_MAX} waiters; the next is answered at once, refused, and counted`, async () => {
    const s = await serve();
    const polls = Array.from({ length: STATUS_WAITERS_MAX }, () => get(s.port, '/status?after=1&wait=30'));
    await until(() => s.status.waiting === STATUS_WAITERS_MAX, 'every request to wait');
    const extra = await get(s.port, '/status?after=1&wait=30');
    expect(extra.status).toBe(200);
    expect(extra.headers['fdstore-wait']).toBe('refused');
    expect(s.kinds).toEqual(['refused_wait']);
    s.status.changes.bump();
    for (const r of await Promise.all(polls)) expect(r.headers['fdstore-wait']).toBe('changed');
    expect(s.status.waiting).toBe(0);
  });

  it('a client that goes away frees its waiter and its socket', async () => {
    const s = await serve();
    const before = countFds();
    const polls = await Promise.all([rawPoll(s.port, '/status?after=1&wait=30'), rawPoll(s.port, '/status?after=1&wait=30')]);
    await until(() => s.status.waiting === 2, 'both requests to wait');
    for (const p of polls) p.sock.destroy();
    await until(() => s.status.waiting === 0, 'the waiters to be released');
    // <=: the previous test's sockets may still be closing when the baseline was taken.
    await until(() => countFds() <= before, 'the sockets to be closed');
    expect(s.kinds).toEqual([]); // nothing was answered
  });

  it('close() releases the waiting requests instead of waiting for them', async () => {
    const s = await serve();
    const polls = await Promise.all([rawPoll(s.port, '/status?after=1&wait=30'), rawPoll(s.port, '/status?after=1&wait=30')]);
    await until(() => s.status.waiting === 2, 'both requests to wait');
    await s.http.close();
    await Promise.all(polls.map((p) => p.closed));
    expect(s.status.waiting).toBe(0);
    expect(polls.map((p) => p.data())).toEqual(['', '']);
  });

  it('answers 400 with a reason for a bad query, and counts it', async () => {
    const s = await serve();
    for (const [q, reason] of [
      ['after=x', 'after must be a generation (a non-negative integer)'],
      ['after=-1', 'after must be a generation (a non-negative integer)'],
      ['after=1&wait=abc', 'wait must be seconds (a non-negative number)'],
      ['wait=5', 'wait needs after (the generation you have)'],
      ['after=1&after=2', 'after given twice'],
      ['since=1', 'unknown parameter: only after and wait'],
    ]) {
      expect(await get(s.port, `/status?${q}`), q).toMatchObject({ status: 400, body: `${reason}\n` });
    }
    expect(s.kinds).toEqual(Array(6).fill('invalid'));
    expect(s.status.waiting).toBe(0);
  });
});

describe('parseStatusQuery', () => {
  it('reads after and wait (seconds, clipped), after alone waiting the longest', () => {
    expect(parseStatusQuery('')).toEqual({ after: null, waitMs: 0 });
    expect(parseStatusQuery('after=3&wait=1.5')).toEqual({ after: 3, waitMs: 1500 });
    expect(parseStatusQuery('after=3&wait=0')).toEqual({ after: 3, waitMs: 0 });
    expect(parseStatusQuery('after=3')).toEqual({ after: 3, waitMs: STATUS_WAIT_MAX_SEC * 1000 });
    expect(parseStatusQuery('wait=3600&after=0')).toEqual({ after: 0, waitMs: STATUS_WAIT_MAX_SEC * 1000 });
  });

  it('refuses what is not a plain number', () => {
    for (const q of ['after=1e3', 'after=0x10', 'after=', 'after=1&wait=1e9', 'after=1&wait=-1', 'after=1&wait=', 'after=9999999999999999']) {
      expect(parseStatusQuery(q), q).toHaveProperty('error');
    }
  });
});
