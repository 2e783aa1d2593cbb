/**
 * Reconcile one enrolled pod: its config annotation from the winning policy, its
 * FdStore (created once, owned by the pod), the FdStore's status from the agent's
 * latest status, and Events for what changed. Level-triggered: everything is
 * recomputed from the caches and the last agent status; the API is written only
 * when the result differs from what was last written, and at most once per
 * STATUS_WRITE_INTERVAL_MS per pod (a busy agent's changes are coalesced).
 */
import type { AgentStatus } from '../status/types.js';
import type { OperatorApi } from './api.js';
import { renderConfig } from './policy/render.js';
import { resolvePolicy } from './policy/resolve.js';
import { buildStatus, comparable, forApi, mergePatch } from './status/fdstore.js';
import { eventsBetween, type PodEvent } from './status/events.js';
import { injectionEvents } from './status/injection.js';
import type { EventLimiter } from './status/ratelimit.js';
import { AGENT_PORT_NAME, CONFIG_ANNOTATION, DEFAULT_AGENT_PORT, PORT_ANNOTATION, type FdStorePolicy, type FdStoreStatus, type Pod } from './types.js';
import type { Clock } from './ports.js';
import type { PollTarget } from './agents/poller.js';

/** Status writes per pod at most this often; changes in between are folded into the next write. */
export const STATUS_WRITE_INTERVAL_MS = 2_000;

export interface PodState {
  /** The agent's latest status (null until the first answer), or why it cannot be reached. */
  agent: AgentStatus | null;
  unreachable: string | null;
  /** The agent status events were last derived from. */
  evented: AgentStatus | null;
  /** The FdStore status last written (or read back when this replica took over). */
  written: FdStoreStatus | undefined;
  writtenKey: string | null;
  storeKnown: boolean;
  lastWriteMs: number;
}

export function newPodState(): PodState {
  return { agent: null, unreachable: null, evented: null, written: undefined, writtenKey: null, storeKnown: false, lastWriteMs: -Infinity };
}

export interface SyncDeps {
  api: OperatorApi;
  clock: Clock;
  limiter: EventLimiter;
  policies(): readonly FdStorePolicy[];
  /** Ask for this pod again in ms (a write held back by the interval). */
  requeue(ms: number): void;
  eventSent(reason: string): void;
}

export async function syncPod(pod: Pod, st: PodState, d: SyncDeps): Promise<void> {
  const { winner, losers } = resolvePolicy(pod, d.policies());
  const text = renderConfig(winner);
  const { namespace: ns, name } = pod.metadata;
  if ((pod.metadata.annotations?.[CONFIG_ANNOTATION] ?? null) !== text) {
    await d.api.patchPodAnnotation(ns, name, CONFIG_ANNOTATION, text);
  }
  if (!st.storeKnown) {
    const existing = await d.api.getFdStore(ns, name);
    if (existing === null) {
      await d.api.createFdStore(pod);
      // Once per pod: the replica that creates its FdStore says what the injector left alone.
      await send(pod, injectionEvents(pod.metadata.annotations), d);
    }
    else if (existing.metadata.uid !== undefined && existing.metadata.ownerReferences?.some((o) => o.uid !== pod.metadata.uid)) {
      // An FdStore left from an older pod of the same name (StatefulSets reuse names):
      // its status is not this pod's. The garbage collector removes it; start fresh.
      st.written = undefined;
    } else st.written = existing.status;
    st.storeKnown = true;
  }
  await sendEvents(pod, st, d);
  const status = forApi(buildStatus({
    agent: st.agent,
    unreachable: st.unreachable,
    prev: st.written,
    policy: winner ? { name: winner.metadata.name, generation: winner.metadata.generation ?? 0 } : null,
    otherPolicies: losers.map((p) => p.metadata.name),
    configText: text,
    nowIso: d.clock.nowIso(),
  }));
  const key = comparable(status);
  if (key === st.writtenKey) return;
  const wait = st.lastWriteMs + STATUS_WRITE_INTERVAL_MS - d.clock.nowMs();
  if (wait > 0) {
    d.requeue(wait);
    return;
  }
  const full = { ...status, lastUpdate: d.clock.nowIso() };
  await d.api.patchFdStoreStatus(ns, name, mergePatch(st.written ?? {}, full));
  st.written = full;
  st.writtenKey = key;
  st.lastWriteMs = d.clock.nowMs();
}

async function sendEvents(pod: Pod, st: PodState, d: SyncDeps): Promise<void> {
  const a = st.agent;
  if (a === null || a === st.evented) return;
  const w = st.written;
  const known = w?.agent ? { instance: w.agent.instance, fds: w.stored ?? 0 } : null;
  const events = eventsBetween(st.evented, a, known);
  // Marked first: an event that fails to send is not retried forever (events are best effort).
  st.evented = a;
  await send(pod, events, d);
}

async function send(pod: Pod, events: PodEvent[], d: SyncDeps): Promise<void> {
  const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
  for (const e of events) {
    const admitted = d.limiter.admit(key, e);
    if (admitted === null) continue;
    await d.api.createEvent(pod, admitted, d.clock.nowIso());
    d.eventSent(admitted.reason);
  }
}

/** Where the pod's agent answers: pod IP and the agent's HTTP port; null until the pod has an IP. */
export function agentTarget(pod: Pod): PollTarget | null {
  const ip = pod.status?.podIP;
  if (!ip || pod.metadata.deletionTimestamp) return null;
  const fromAnnotation = Number(pod.metadata.annotations?.[PORT_ANNOTATION]);
  if (Number.isInteger(fromAnnotation) && fromAnnotation > 0 && fromAnnotation < 65536) return { host: ip, port: fromAnnotation };
  // A native sidecar is an init container: look there too.
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    const p = c.ports?.find((x) => x.name === AGENT_PORT_NAME);
    if (p) return { host: ip, port: p.containerPort };
  }
  return { host: ip, port: DEFAULT_AGENT_PORT };
}
