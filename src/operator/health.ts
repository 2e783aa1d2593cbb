/**
 * What the operator's /healthz and /readyz answer (pure: watch state and a clock in,
 * a verdict and a one-line reason out; main.ts wires them to the real watches).
 *
 * /healthz is the liveness probe: failing it restarts the operator. It fails only
 * when a watch has made no progress (no list, no event, no BOOKMARK, no reconnect:
 * Watched.lastProgressMs) for WATCH_STUCK_MS. A quiet but healthy watch progresses at
 * least every WATCH_RELIST_MS (10 min, the periodic relist) and, with bookmarks,
 * about every minute, and Watched itself rebuilds a silent connection after
 * WATCH_INACTIVITY_MS (12 min); so 30 min without progress means the rebuilding
 * itself is not getting anywhere: the watch is stuck, or the API server has been
 * unreachable that long, where a restart costs nothing (the caches are rebuilt by a
 * list either way).
 *
 * /readyz is the readiness probe: both caches listed at least once. Leadership plays
 * no part: every replica serves the injector's webhook from its policy cache, and a
 * standby must stay Ready to take over (and to count for the PodDisruptionBudget).
 */
import type { Liveness } from '../unit/run.js';
import { WATCH_RELIST_MS } from './kube/watch.js';

/**
 * Three relist periods: far above anything a healthy quiet watch goes without progress
 * (above the relist period and the inactivity timeout: test/operator/health.test.ts).
 */
export const WATCH_STUCK_MS = 3 * WATCH_RELIST_MS;

export interface WatchState {
  readonly name: string;
  lastProgressMs(): number;
  stats(): { synced: boolean };
}

/** Healthy while every watch progressed within limitMs of nowMs (the watches' clock). */
export function watchesHealthy(watches: readonly WatchState[], nowMs: number, limitMs = WATCH_STUCK_MS): Liveness {
  const stuck = watches
    .map((w) => ({ name: w.name, idleMs: nowMs - w.lastProgressMs() }))
    .filter((w) => w.idleMs > limitMs);
  if (stuck.length === 0) return { ok: true, reason: 'serving; watches progressing' };
  const what = stuck.map((w) => `${w.name} (${Math.round(w.idleMs / 1000)} s)`).join(', ');
  return { ok: false, reason: `watch without progress for over ${Math.round(limitMs / 1000)} s: ${what}` };
}

/** Ready once every watch listed; `leading` only adds to the reason. */
export function cachesReady(watches: readonly WatchState[], leading: boolean): Liveness {
  const pending = watches.filter((w) => !w.stats().synced).map((w) => w.name);
  if (pending.length > 0) return { ok: false, reason: `caches not synced yet: ${pending.join(', ')}` };
  return { ok: true, reason: `caches synced; ${leading ? 'leading' : 'standby'}` };
}
