/**
 * The Metrics observer on its own registry, with real Containers and stores (fake
 * kernel ops): series from start, counters per event, state gauges at scrape time,
 * the per-entry type cache, bounded labels, and promtool's verdict.
 */
import { describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { Container } from '../../src/unit/container.js';
import { fanout, type Observer } from '../../src/unit/observer.js';
import { DEFAULTS } from '../../src/config/types.js';
import { Metrics } from '../../src/metrics/metrics.js';
import type { FdType } from '../../src/store/describe.js';
import type { Entry, FdStat, StoreOps } from '../../src/store/store.js';
import { promtoolCheck, seriesMap, zeroSeries, agentZeroSeries } from './expo.js';

const S_IFSOCK = 0o140000;
const S_IFREG = 0o100000;

function ops(): StoreOps {
  let id = 0;
  return { sameFile: () => false, pollAdd: () => 0, pollDel: () => {}, close: () => {}, nextId: () => ++id };
}

function stat(ino: number, mode = S_IFSOCK): FdStat {
  return { dev: 1, ino, mode, flags: 2 };
}

interface Setup {
  registry: Registry;
  metrics: Metrics;
  containers: Container[];
  typeCalls: number[];
  types: Map<number, FdType | null>;
  wall: { ms: number };
  scrape(): Promise<Map<string, number>>;
}

function setup(names = ['app', 'worker'], started = true): Setup {
  const registry = new Registry();
  const storeOps = ops();
  const containers = started ? names.map((name) => new Container({ ...DEFAULTS, name, fileDescriptorStoreMax: 16 }, storeOps, 0)) : [];
  const typeCalls: number[] = [];
  const types = new Map<number, FdType | null>();
  const wall = { ms: 1_700_000_000_000 };
  const metrics = new Metrics({
    registry,
    names,
    containers: () => containers,
    typeOf: (e: Entry) => {
      typeCalls.push(e.id);
      const t = types.get(e.fd);
      return t === undefined ? 'other' : t;
    },
    wallMs: () => wall.ms,
    version: '1.2.3',
    processFds: () => ({ open: 42, max: 1024 }),
  });
  return { registry, metrics, containers, typeCalls, types, wall, scrape: async () => seriesMap(await registry.metrics()) };
}

describe('Metrics', () => {
  it('has every known series from start, at zero, before the first event', async () => {
    const s = setup();
    const expected = new Map([...zeroSeries('app', 16), ...zeroSeries('worker', 16), ...agentZeroSeries(false)]);
    expected.set('fdstore_build_info{version="1.2.3"}', 1);
    expected.set('fdstore_agent_start_time_seconds', 1_700_000_000);
    expect(Object.fromEntries(await s.scrape())).toEqual(Object.fromEntries(expected));
  });

  it('has the per-container series even before the agent holds the containers', async () => {
    const s = setup(['app'], false);
    const got = await s.scrape();
    expect(got.get('fdstore_stored_fds{app_container="app",type="tcp_listen"}')).toBe(0);
    expect(got.get('fdstore_fd_store_max{app_container="app"}')).toBe(0);
    expect(got.get('fdstore_container_state{app_container="app",state="starting"}')).toBe(0);
    expect(got.get('fdstore_notify_rejected_total{app_container="app",reason="bad_barrier"}')).toBe(0);
  });

  it('counts observer events, also when called detached through fanout()', async () => {
    const s = setup();
    const o = fanout(s.metrics);
    o.accepted('app');
    o.accepted('app');
    o.rejected('app', 'nul_byte', 'embedded NUL', { pid: 9, uid: 0 });
    o.rejected('app', 'unauthorized', 'main only');
    o.dropped('app', 'over_limit', 3, { max: 16 });
    o.dropped('worker', 'hangup', 1, {});
    o.stored('app', 5, 'web');
    o.warn('app', 'invalid ERRNO=, ignoring', { value: 'x' });
    o.watchdogPing('app');
    o.watchdogFailed('app', 'timeout');
    o.watchdogFailed('app', 'trigger');
    o.watchdogFailed('worker', 'start_timeout');
    o.runStarted('app', 123);
    o.restored('app', 4, 0.003);
    o.mainPid('app', 77);
    o.stateChanged('app', 'ready');
    const m = await s.scrape();
    expect(m.get('fdstore_notify_messages_total{app_container="app",result="accepted"}')).toBe(2);
    expect(m.get('fdstore_notify_messages_total{app_container="app",result="rejected"}')).toBe(2);
    expect(m.get('fdstore_notify_rejected_total{app_container="app",reason="nul_byte"}')).toBe(1);
    expect(m.get('fdstore_notify_rejected_total{app_container="app",reason="unauthorized"}')).toBe(1);
    expect(m.get('fdstore_fds_dropped_total{app_container="app",reason="over_limit"}')).toBe(3);
    expect(m.get('fdstore_fds_dropped_total{app_container="worker",reason="hangup"}')).toBe(1);
    expect(m.get('fdstore_fds_stored_total{app_container="app"}')).toBe(5);
    expect(m.get('fdstore_notify_warnings_total{app_container="app"}')).toBe(1);
    expect(m.get('fdstore_watchdog_pings_total{app_container="app"}')).toBe(1);
    expect(m.get('fdstore_watchdog_last_ping_timestamp_seconds{app_container="app"}')).toBe(1_700_000_000);
    expect(m.get('fdstore_watchdog_last_ping_timestamp_seconds{app_container="worker"}')).toBe(0);
    expect(m.get('fdstore_watchdog_expired_total{app_container="app"}')).toBe(2);
    expect(m.get('fdstore_start_timeouts_total{app_container="worker"}')).toBe(1);
    expect(m.get('fdstore_main_process_starts_total{app_container="app"}')).toBe(1);
    expect(m.get('fdstore_restores_total{app_container="app"}')).toBe(1);
    expect(m.get('fdstore_restored_fds_total{app_container="app"}')).toBe(4);
    expect(m.get('fdstore_restore_duration_seconds_bucket{app_container="app",le="0.0025"}')).toBe(0);
    expect(m.get('fdstore_restore_duration_seconds_bucket{app_container="app",le="0.005"}')).toBe(1);
    expect(m.get('fdstore_restore_duration_seconds_sum{app_container="app"}')).toBe(0.003);
  });

  it('reads state gauges from the containers at scrape time', async () => {
    const s = setup();
    const [app] = s.containers;
    app!.run.watchdogUsecOverride = 2_500_000n;
    app!.run.ready(0);
    let m = await s.scrape();
    expect(m.get('fdstore_container_ready{app_container="app"}')).toBe(1);
    expect(m.get('fdstore_container_state{app_container="app",state="ready"}')).toBe(1);
    expect(m.get('fdstore_container_state{app_container="app",state="starting"}')).toBe(0);
    expect(m.get('fdstore_watchdog_timeout_seconds{app_container="app"}')).toBe(2.5);
    app!.run.reloading();
    m = await s.scrape();
    expect(m.get('fdstore_container_ready{app_container="app"}')).toBe(1);
    app!.run.trigger();
    app!.run.stopping();
    m = await s.scrape();
    expect(m.get('fdstore_container_ready{app_container="app"}')).toBe(0);
    expect(m.get('fdstore_container_live{app_container="app"}')).toBe(0);
    expect(m.get('fdstore_container_state{app_container="app",state="stopping"}')).toBe(1);
    app!.store.setMax(7);
    m = await s.scrape();
    expect(m.get('fdstore_fd_store_max{app_container="app"}')).toBe(7);
    const text = await s.registry.metrics();
    expect(text).toContain('process_open_fds 42');
    expect(text).toContain('process_max_fds 1024');
  });

  it('counts stored fds by type, asking the type once per stored entry', async () => {
    const s = setup();
    const [app, worker] = s.containers;
    s.types.set(10, 'tcp_listen').set(11, 'tcp_listen').set(12, 'memfd').set(20, 'udp');
    app!.store.add([10, 11, 12], [stat(1), stat(2), stat(3, S_IFREG)], 'web', true);
    worker!.store.add([20], [stat(4)], 'q', true);
    let m = await s.scrape();
    expect(m.get('fdstore_stored_fds{app_container="app",type="tcp_listen"}')).toBe(2);
    expect(m.get('fdstore_stored_fds{app_container="app",type="memfd"}')).toBe(1);
    expect(m.get('fdstore_stored_fds{app_container="worker",type="udp"}')).toBe(1);
    expect(m.get('fdstore_stored_fds{app_container="worker",type="tcp_listen"}')).toBe(0);
    expect(s.typeCalls).toHaveLength(4);
    await s.scrape();
    await s.scrape();
    expect(s.typeCalls).toHaveLength(4);
    app!.store.removeByName('web');
    m = await s.scrape();
    expect(m.get('fdstore_stored_fds{app_container="app",type="tcp_listen"}')).toBe(0);
    // Same fd number, new entry (new id): asked again, not served from a stale cache.
    s.types.set(10, 'unix');
    app!.store.add([10], [stat(1)], 'web', true);
    m = await s.scrape();
    expect(m.get('fdstore_stored_fds{app_container="app",type="unix"}')).toBe(1);
    expect(s.typeCalls).toHaveLength(5);
  });

  it('counts an fd whose type cannot be told as other, and asks again next scrape', async () => {
    const s = setup(['app']);
    s.types.set(10, null);
    s.containers[0]!.store.add([10], [stat(1)], 'x', true);
    expect((await s.scrape()).get('fdstore_stored_fds{app_container="app",type="other"}')).toBe(1);
    s.types.set(10, 'pipe');
    const m = await s.scrape();
    expect(m.get('fdstore_stored_fds{app_container="app",type="pipe"}')).toBe(1);
    expect(m.get('fdstore_stored_fds{app_container="app",type="other"}')).toBe(0);
  });

  it('ignores events for containers it was not configured with: labels stay bounded', async () => {
    const s = setup(['app']);
    const before = [...(await s.scrape()).keys()].sort();
    const o: Observer = s.metrics;
    for (let i = 0; i < 100; i++) {
      const name = `rogue-${i}`;
      o.accepted(name);
      o.rejected(name, 'too_large', 'x');
      o.dropped(name, 'duplicate', 1, {});
      o.stored(name, 1, `fd-${i}`);
      o.watchdogPing(name);
      o.restored(name, 1, 0.1);
    }
    expect([...(await s.scrape()).keys()].sort()).toEqual(before);
  });

  it('passes promtool check metrics, before and after events', async () => {
    const s = setup();
    expect(promtoolCheck(await s.registry.metrics())).toEqual({ code: 0, output: '' });
    const o: Observer = s.metrics;
    o.restored('app', 3, 0.02);
    o.dropped('app', 'error', 2, {});
    s.containers[0]!.store.add([10], [stat(1)], 'x', true);
    expect(promtoolCheck(await s.registry.metrics())).toEqual({ code: 0, output: '' });
  });

  it('never registers on prom-client\'s global registry', async () => {
    const { register } = await import('prom-client');
    setup();
    expect(await register.metrics()).not.toContain('fdstore_');
  });
});
