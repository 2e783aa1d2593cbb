/**
 * The operator's /healthz and /readyz (src/operator/health.ts) over its real HTTP
 * endpoint on a loopback port: liveness fails only when a watch made no progress for
 * WATCH_STUCK_MS, readiness follows the caches. The watch state comes from a real
 * Watched (its list is the injectable `list` seam; its watch requests go to a port
 * where nothing listens, so they fail for real) on an injected clock.
 */
import { createServer } from 'node:net';
import { KubeConfig, type KubernetesListObject, type V1ConfigMap } from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/log/log.js';
import { cachesReady, watchesHealthy, WATCH_STUCK_MS, type WatchState } from '../../src/operator/health.js';
import { OperatorHttp } from '../../src/operator/http.js';
import { WATCH_INACTIVITY_MS, WATCH_RELIST_MS, Watched } from '../../src/operator/kube/watch.js';

const DEADLINE_MS = 20_000;
const cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f();
});

async function waitFor(cond: () => boolean, what: string): Promise<void> {
  const end = performance.now() + DEADLINE_MS;
  while (!cond()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A loopback port nothing listens on (bound, then closed). */
async function deadPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

async function serve(healthy: () => ReturnType<typeof watchesHealthy>, ready: () => ReturnType<typeof cachesReady>): Promise<string> {
  const http = new OperatorHttp({ registry: new Registry(), healthy, ready });
  const a = await http.listen('127.0.0.1', 0);
  cleanup.push(() => http.close());
  return `http://127.0.0.1:${a.port}`;
}

async function get(url: string): Promise<{ code: number; body: string }> {
  const r = await fetch(url);
  return { code: r.status, body: await r.text() };
}

/** A watch's state as Watched reports it, set by the test. */
function state(name: string, lastProgress: number, synced: boolean): WatchState & { at: number; synced: boolean } {
  const s = { name, at: lastProgress, synced, lastProgressMs: () => s.at, stats: () => ({ synced: s.synced }) };
  return s;
}

describe('operator /healthz', () => {
  it('the limit is far above what a quiet healthy watch goes without progress (relist, inactivity rebuild)', () => {
    expect(WATCH_STUCK_MS).toBeGreaterThanOrEqual(2 * Math.max(WATCH_RELIST_MS, WATCH_INACTIVITY_MS));
  });

  it('200 while every watch progressed within WATCH_STUCK_MS; 503 naming the stuck watch after; 200 again once it progresses', async () => {
    let now = 1_000_000;
    const pods = state('pods', now, true);
    const policies = state('fdstorepolicies', now, true);
    const url = await serve(() => watchesHealthy([pods, policies], now), () => cachesReady([pods, policies], false));
    expect(await get(`${url}/healthz`)).toEqual({ code: 200, body: 'serving; watches progressing\n' });
    now += WATCH_STUCK_MS; // exactly the limit: still fine
    expect((await get(`${url}/healthz`)).code).toBe(200);
    policies.at = now; // the policy watch got a bookmark; the pod watch did not
    now += 1_000;
    const bad = await get(`${url}/healthz`);
    expect(bad.code).toBe(503);
    expect(bad.body).toBe(`watch without progress for over ${WATCH_STUCK_MS / 1000} s: pods (${WATCH_STUCK_MS / 1000 + 1} s)\n`);
    expect(bad.body.split('\n').filter((l) => l !== '')).toHaveLength(1);
    const head = await fetch(`${url}/healthz`, { method: 'HEAD' });
    expect(head.status).toBe(503);
    pods.at = now;
    expect((await get(`${url}/healthz`)).code).toBe(200);
  });

  it('a real Watched: a list is progress, failing watch requests and retries are not', async () => {
    let now = 5_000_000;
    let listOk = true;
    let lists = 0;
    const kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${await deadPort()}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const w = new Watched<V1ConfigMap>({
      kc,
      source: { path: '/api/v1/namespaces/t/configmaps' },
      name: 'configmaps',
      log: createLogger({ write: () => {} }, 'error'),
      now: () => now,
      backoff: { baseMs: 5, capMs: 20, stableMs: 0 },
      list: async () => {
        lists++;
        if (!listOk) throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
        return { apiVersion: 'v1', kind: 'ConfigMapList', metadata: { resourceVersion: '1' }, items: [] } as KubernetesListObject<V1ConfigMap>;
      },
    });
    cleanup.push(() => w.stop());
    const url = await serve(() => watchesHealthy([w], now), () => cachesReady([w], true));
    expect(await get(`${url}/readyz`)).toEqual({ code: 503, body: 'caches not synced yet: configmaps\n' });
    w.start();
    await w.synced;
    const listedAt = now;
    expect(w.lastProgressMs()).toBe(listedAt);
    expect(await get(`${url}/readyz`)).toEqual({ code: 200, body: 'caches synced; leading\n' });
    // From here every list fails too: the watch retries with back-off, for real, and never progresses.
    listOk = false;
    now += 60_000;
    const before = lists;
    await waitFor(() => w.stats().errors.network >= 3 && lists >= before + 2, 'failed watch requests and list retries');
    expect(w.lastProgressMs()).toBe(listedAt);
    expect((await get(`${url}/healthz`)).code).toBe(200); // a minute of outage is not stuck
    now = listedAt + WATCH_STUCK_MS + 1;
    const bad = await get(`${url}/healthz`);
    expect(bad.code).toBe(503);
    expect(bad.body).toMatch(/^watch without progress for over \d+ s: configmaps \(\d+ s\)\n$/);
    expect((await get(`${url}/readyz`)).code).toBe(200); // the cache it has stays served
    // The API server answers again: the next retry's list is progress.
    listOk = true;
    const recovered = now;
    await waitFor(() => w.lastProgressMs() === recovered, 'a successful list after the outage');
    expect((await get(`${url}/healthz`)).code).toBe(200);
  });
});

describe('operator /readyz', () => {
  it('503 naming the caches not synced; 200 once both are, leading or standby alike', async () => {
    const pods = state('pods', 0, false);
    const policies = state('fdstorepolicies', 0, false);
    let leading = false;
    const url = await serve(() => watchesHealthy([pods, policies], 0), () => cachesReady([pods, policies], leading));
    expect(await get(`${url}/readyz`)).toEqual({ code: 503, body: 'caches not synced yet: pods, fdstorepolicies\n' });
    pods.synced = true;
    expect(await get(`${url}/readyz`)).toEqual({ code: 503, body: 'caches not synced yet: fdstorepolicies\n' });
    policies.synced = true;
    expect(await get(`${url}/readyz`)).toEqual({ code: 200, body: 'caches synced; standby\n' });
    leading = true;
    expect(await get(`${url}/readyz`)).toEqual({ code: 200, body: 'caches synced; leading\n' });
  });
});
