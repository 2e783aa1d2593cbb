/**
 * Reading Prometheus text exposition in tests: samples by series, and the
 * verdict of the real `promtool check metrics` (Debian's prometheus package).
 */
import { spawnSync } from 'node:child_process';
import { RUN_PHASES } from '../../src/metrics/metrics.js';
import { FD_TYPES } from '../../src/store/describe.js';
import { DROP_REASONS } from '../../src/store/store.js';
import { LOG_REASONS } from '../../src/unit/observer.js';
import { REJECT_REASONS, RESTORE_FAILURES } from '../../src/unit/reasons.js';
import { STATUS_REQUEST_KINDS } from '../../src/http/status.js';

export const PROMTOOL = '/usr/bin/promtool';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Every sample line, in order; values parsed (+Inf/-Inf/NaN included). */
export function parseExposition(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparsable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]!.replace('Inf', 'Infinity')) });
  }
  return out;
}

/** `name{k="v",...}` with labels sorted: a stable key per series. */
export function seriesKey(s: Pick<Sample, 'name' | 'labels'>): string {
  const ls = Object.keys(s.labels)
    .sort()
    .map((k) => `${k}="${s.labels[k]}"`)
    .join(',');
  return ls === '' ? s.name : `${s.name}{${ls}}`;
}

/** series key -> value, for the samples whose name starts with prefix. */
export function seriesMap(text: string, prefix = 'fdstore_'): Map<string, number> {
  const m = new Map<string, number>();
  for (const s of parseExposition(text)) if (s.name.startsWith(prefix)) m.set(seriesKey(s), s.value);
  return m;
}

/** promtool's complaints (empty when clean) and its exit code. */
export function promtoolCheck(text: string): { code: number | null; output: string } {
  const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  if (r.error) throw r.error;
  return { code: r.status, output: `${r.stdout}${r.stderr}` };
}

/** Every fdstore_ series one container has before any event. */
/** The agent-wide series at start (no container label): /status requests, and its waiters gauge when the agent has one. */
export function agentZeroSeries(withWaiters: boolean): Map<string, number> {
  const m = new Map<string, number>();
  for (const k of STATUS_REQUEST_KINDS) m.set(`fdstore_status_requests_total{kind="${k}"}`, 0);
  if (withWaiters) m.set('fdstore_status_waiters', 0);
  return m;
}

export function zeroSeries(c: string, max: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of ['accepted', 'rejected']) m.set(`fdstore_notify_messages_total{app_container="${c}",result="${r}"}`, 0);
  for (const r of REJECT_REASONS) m.set(`fdstore_notify_rejected_total{app_container="${c}",reason="${r}"}`, 0);
  for (const r of DROP_REASONS) m.set(`fdstore_fds_dropped_total{app_container="${c}",reason="${r}"}`, 0);
  for (const r of LOG_REASONS) m.set(`fdstore_log_suppressed_total{app_container="${c}",reason="${r}"}`, 0);
  for (const r of RESTORE_FAILURES) m.set(`fdstore_restore_failures_total{app_container="${c}",reason="${r}"}`, 0);
  m.set(`fdstore_deferred_closes{app_container="${c}"}`, 0);
  for (const n of [
    'fds_stored_total', 'restores_total', 'restored_fds_total', 'watchdog_expired_total', 'start_timeouts_total',
    'watchdog_pings_total', 'main_process_starts_total', 'notify_warnings_total', 'fd_store_max', 'container_ready',
    'container_live', 'watchdog_timeout_seconds', 'watchdog_last_ping_timestamp_seconds',
    'restore_duration_seconds_sum', 'restore_duration_seconds_count',
  ]) m.set(`fdstore_${n}{app_container="${c}"}`, 0);
  for (const le of ['0.001', '0.0025', '0.005', '0.01', '0.025', '0.05', '0.1', '0.25', '0.5', '1', '2.5', '5', '10', '+Inf']) {
    m.set(`fdstore_restore_duration_seconds_bucket{app_container="${c}",le="${le}"}`, 0);
  }
  for (const t of FD_TYPES) m.set(`fdstore_stored_fds{app_container="${c}",type="${t}"}`, 0);
  for (const s of RUN_PHASES) m.set(`fdstore_container_state{app_container="${c}",state="${s}"}`, s === 'starting' ? 1 : 0);
  m.set(`fdstore_fd_store_max{app_container="${c}"}`, max);
  m.set(`fdstore_container_live{app_container="${c}"}`, 1);
  return m;
}

