/**
 * Probes of the real agent driven by a real client (python3-systemd): readiness
 * through READY/RELOADING/STOPPING, liveness through WATCHDOG=trigger, a
 * WATCHDOG_USEC= expiry and timeoutStartSec enforced by the agent's own timer,
 * and the start-up failures of the HTTP endpoint.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { pyNotify } from '../helpers/clients/index.js';
import { tempRoot } from '../helpers/agent.js';
import { FDSTORE_BIN, PYTHON, run } from '../helpers/proc.js';
import { rmSync } from 'node:fs';
import { seriesMap } from '../metrics/expo.js';
import { requireBuild, startHttpAgent, until, type HttpAgent } from '../metrics/live.js';

const cleanups: Array<() => Promise<unknown> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function agentWith(args: string[] = [], containers = ['app']): Promise<HttpAgent> {
  const h = await startHttpAgent({ containers, args });
  cleanups.push(() => h.agent.dispose());
  return h;
}

async function notify(h: HttpAgent, state: string): Promise<void> {
  const { result, proc } = await pyNotify({ socket: h.agent.notifyPath('app'), state });
  expect(result).toMatchObject({ ret: true, acked: true });
  await proc.close();
}

describe('probes of a real agent', () => {
  it('readiness follows READY=1, RELOADING=1 (still ready) and STOPPING=1; liveness fails on WATCHDOG=trigger', async () => {
    const h = await agentWith([], ['app', 'other']);
    expect(await h.get('/healthz')).toEqual({ status: 200, body: 'ok\n' });
    expect(await h.get('/readyz/app')).toEqual({ status: 503, body: 'no READY=1 in this run yet\n' });
    expect(await h.get('/livez/app')).toEqual({ status: 200, body: 'ok\n' });
    expect((await h.get('/readyz/nope')).status).toBe(404);
    expect((await h.get('/livez/nope')).status).toBe(404);

    await notify(h, 'READY=1\nSTATUS=secret status text');
    expect(await h.get('/readyz/app')).toEqual({ status: 200, body: 'ready\n' });
    expect((await h.get('/readyz/other')).status).toBe(503);
    await notify(h, 'RELOADING=1');
    expect(await h.get('/readyz/app')).toEqual({ status: 200, body: 'reloading\n' });
    await notify(h, 'READY=1');
    expect(await h.get('/readyz/app')).toEqual({ status: 200, body: 'ready\n' });
    await notify(h, 'STOPPING=1');
    expect(await h.get('/readyz/app')).toEqual({ status: 503, body: 'STOPPING=1 received\n' });
    await notify(h, 'READY=1');
    expect((await h.get('/readyz/app')).status).toBe(503);
    expect((await h.get('/livez/app')).status).toBe(200);
    await notify(h, 'WATCHDOG=trigger');
    expect(await h.get('/livez/app')).toEqual({ status: 503, body: 'watchdog triggered by the application (WATCHDOG=trigger)\n' });
    expect((await h.get('/livez/other')).status).toBe(200);
    const m = seriesMap(await h.scrape());
    expect(m.get('fdstore_watchdog_expired_total{app_container="app"}')).toBe(1);
    expect(m.get('fdstore_container_live{app_container="app"}')).toBe(0);
    expect(m.get('fdstore_container_ready{app_container="app"}')).toBe(0);
  });

  it('the agent enforces a WATCHDOG_USEC= deadline on its own (no further message needed)', async () => {
    const h = await agentWith();
    await notify(h, 'READY=1\nWATCHDOG_USEC=300000');
    const body = await until(async () => {
      const r = await h.get('/livez/app');
      return r.status === 503 ? r.body : undefined;
    }, '/livez to fail');
    expect(body).toBe('watchdog timeout (limit 300 ms)\n');
    expect(seriesMap(await h.scrape()).get('fdstore_watchdog_expired_total{app_container="app"}')).toBe(1);
  });

  it('the agent enforces timeoutStartSec from its start', async () => {
    const h = await agentWith(['--timeout-start-sec', '0.3']);
    const body = await until(async () => {
      const r = await h.get('/livez/app');
      return r.status === 503 ? r.body : undefined;
    }, '/livez to fail');
    expect(body).toBe('start timeout: no READY=1 within timeoutStartSec\n');
    expect(seriesMap(await h.scrape()).get('fdstore_start_timeouts_total{app_container="app"}')).toBe(1);
  });

  it('with watchdogSignal, WATCHDOG=trigger gets the main process SIGABRT (W5.5)', async () => {
    const h = await startHttpAgent({ containers: ['app'], config: { containers: [{ name: 'app', watchdogSignal: true }] } });
    cleanups.push(() => h.agent.dispose());
    const r = await run(PYTHON, ['-c', ABORTED_APP], { env: { ...process.env, NOTIFY_SOCKET: h.agent.notifyPath('app') } });
    expect(r.signal, r.stdout + r.stderr).toBe('SIGABRT');
    expect(r.stdout).toBe('triggering\n');
    await h.agent.waitForLog((l) => l.msg === 'watchdog signal sent' && l.signal === 'SIGABRT');
    expect((await h.get('/livez/app')).status).toBe(503);
  });

  it('SIGTERM closes the HTTP endpoint', async () => {
    const h = await agentWith();
    expect((await h.get('/healthz')).status).toBe(200);
    expect(await h.agent.stop()).toBe(0);
    await expect(h.get('/healthz')).rejects.toThrow();
  });
});

describe('HTTP endpoint start-up failures', () => {
  it('a busy port makes the agent exit non-zero with a clear log line', async () => {
    requireBuild();
    const blocker = createServer();
    await new Promise<void>((res) => blocker.listen({ host: '127.0.0.1', port: 0 }, res));
    cleanups.push(() => new Promise((res) => blocker.close(res)));
    const port = (blocker.address() as { port: number }).port;
    const root = tempRoot();
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const r = await run(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', join(root, 'run'), '--container', 'app', '--http', `127.0.0.1:${port}`]);
    expect(r.code).toBe(1);
    const lines = r.stderr.trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toMatchObject({
      level: 'error',
      msg: 'agent failed to start',
      code: 'EADDRINUSE',
      error: `cannot listen on 127.0.0.1:${port} (--http) for metrics and probes: address already in use; choose a free port or --http off`,
    });
    expect(lines.some((l) => l.msg === 'agent ready')).toBe(false);
  });

  it('a malformed --http is a usage error (one plain line)', async () => {
    requireBuild();
    const root = tempRoot();
    cleanups.push(() => rmSync(root, { recursive: true, force: true }));
    const r = await run(process.execPath, [FDSTORE_BIN, 'agent', '--run-dir', join(root, 'run'), '--container', 'app', '--http', '9721']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe('fdstore agent: --http must be HOST:PORT, [IPV6]:PORT or off, not "9721"\n');
  });
});

/** Declares itself the main process, then asks for the watchdog; waits to be killed. */
const ABORTED_APP = `
import os, resource, sys, time
from systemd import daemon
resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
daemon.notify('MAINPID=%d\\nREADY=1' % os.getpid())
print('triggering', flush=True)
daemon.notify('WATCHDOG=trigger')
time.sleep(10)
sys.exit(3)
`;
