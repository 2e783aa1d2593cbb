/**
 * Kubernetes Events for what the owner of a workload must see in `kubectl describe
 * pod`, derived from two successive agent statuses (never one per datagram: the
 * agent's counters are compared, so a burst of 1,000 restores between two polls is
 * one event that says 1,000). Pure.
 */
import type { AgentStatus, ContainerState } from '../../status/types.js';

export interface PodEvent {
  type: 'Normal' | 'Warning';
  /** A closed set (EVENT_REASONS): rate limits key on it. */
  reason: EventReason;
  message: string;
}

export type EventReason = 'FdsRestored' | 'WatchdogExpired' | 'StartTimeout' | 'StoreFull' | 'StoreLost' | 'ConfigRejected' | 'ConfigApplied' | 'ContainerNotWrapped';
export const EVENT_REASONS: readonly EventReason[] = ['FdsRestored', 'WatchdogExpired', 'StartTimeout', 'StoreFull', 'StoreLost', 'ConfigRejected', 'ConfigApplied', 'ContainerNotWrapped'];

/** What the last written FdStore said about the agent: survives an operator restart or failover. */
export interface LastKnown {
  instance: string;
  fds: number;
}

/**
 * Events from prev → next. prev null: the first status this operator process has
 * seen of the pod; only a lost store is news then (known from the FdStore written before).
 */
export function eventsBetween(prev: AgentStatus | null, next: AgentStatus, known: LastKnown | null): PodEvent[] {
  const before = prev ? { instance: prev.agent.instance, fds: prev.containers.reduce((n, c) => n + c.stored, 0) } : known;
  if (prev === null || prev.agent.instance !== next.agent.instance) {
    const stored = next.containers.reduce((n, c) => n + c.stored, 0);
    if (before && before.instance !== next.agent.instance && next.agent.keeper?.storeLost === true) {
      return [{ type: 'Warning', reason: 'StoreLost', message: `the fdstore agent restarted (${next.agent.startedAt}) and its keeper had restarted too: the stores were lost` }];
    }
    if (before && before.instance !== next.agent.instance && before.fds > 0 && stored === 0) {
      return [{ type: 'Warning', reason: 'StoreLost', message: `the fdstore agent restarted (${next.agent.startedAt}); the ${before.fds} fd(s) it stored are lost` }];
    }
    return [];
  }
  const out: PodEvent[] = [];
  const byName = new Map(prev.containers.map((c) => [c.name, c]));
  for (const c of next.containers) {
    const p = byName.get(c.name);
    if (p) out.push(...containerEvents(p, c));
  }
  const err = next.config.error;
  if (err && err.hash !== prev.config.error?.hash) out.push({ type: 'Warning', reason: 'ConfigRejected', message: `the agent refused its config and keeps the last good one: ${err.message}` });
  const pol = next.config.policy;
  if (pol && next.config.hash !== prev.config.hash) out.push({ type: 'Normal', reason: 'ConfigApplied', message: `the agent applied policy ${pol.name} (generation ${pol.generation})` });
  return out;
}

function containerEvents(p: ContainerState, c: ContainerState): PodEvent[] {
  const out: PodEvent[] = [];
  const restores = c.restores - p.restores;
  // Every start is a restore, also the first one with an empty store: an event only when fds came back.
  if (restores > 0 && (c.lastRestore?.fds ?? 0) > 0) {
    const fds = c.lastRestore ? `${c.lastRestore.fds} fd(s)` : 'its fds';
    const times = restores === 1 ? '' : ` (${restores} restores since the last event)`;
    out.push({ type: 'Normal', reason: 'FdsRestored', message: `restored ${fds} into container ${c.name} (restore #${c.restores})${times}` });
  }
  const wd = c.watchdog.failures - p.watchdog.failures;
  if (wd > 0) out.push({ type: 'Warning', reason: 'WatchdogExpired', message: `container ${c.name}: watchdog expired or triggered${wd > 1 ? ` ${wd} times` : ''} (WatchdogSec=${c.watchdog.sec}s); /livez/${c.name} fails` });
  const st = c.watchdog.startTimeouts - p.watchdog.startTimeouts;
  if (st > 0) out.push({ type: 'Warning', reason: 'StartTimeout', message: `container ${c.name}: no READY=1 within timeoutStartSec; /livez/${c.name} fails` });
  const over = c.overLimit - p.overLimit;
  if (over > 0) out.push({ type: 'Warning', reason: 'StoreFull', message: `container ${c.name}: ${over} fd(s) refused, the store is full (fileDescriptorStoreMax=${c.max})` });
  return out;
}
