/**
 * The operator's control loop. Caches of FdStorePolicies and enrolled pods (watched,
 * never polled) feed a work queue of pod keys; each key is reconciled by syncPod.
 * Agents are followed by long-poll (one per pod) only while this replica leads, and
 * only the leader writes. Policy statuses are recomputed in one debounced pass.
 *
 * Failures never stop anything: a failed key comes back after a capped, jittered
 * back-off, and nothing is ever deleted or closed in a pod because the API is away
 * (the agent keeps its config file and its fds; the operator just catches up).
 */
import type { Logger } from '../log/log.js';
import type { AgentStatus } from '../status/types.js';
import { statusOf, type OperatorApi } from './api.js';
import type { ConfigCheck } from './policysync.js';
import { policyStatuses, sameStatus } from './policysync.js';
import { agentTarget, newPodState, syncPod, type PodState } from './podsync.js';
import type { AgentLink, AgentLinks, ChangeKind, Clock, Source } from './ports.js';
import { WorkQueue } from './queue.js';
import { EventLimiter } from './status/ratelimit.js';
import { podKey, type FdStorePolicy, type Pod } from './types.js';
import { jitteredDelayMs } from './kube/backoff.js';

/** Every pod is looked at again this often even without a change (the writes happen only on change). */
export const RESYNC_MS = 60_000;
/** Policy statuses at most this often. */
export const POLICY_PASS_MS = 2_000;

export interface ControllerMetrics {
  reconciled(result: 'ok' | 'error'): void;
  queueDepth(n: number): void;
  podsManaged(n: number): void;
  eventSent(reason: string): void;
  eventsSuppressed(n: number): void;
}

export interface ControllerDeps {
  pods: Source<Pod>;
  policies: Source<FdStorePolicy>;
  api: OperatorApi;
  agents: AgentLinks;
  clock: Clock;
  log: Logger;
  metrics: ControllerMetrics;
  checkConfig: ConfigCheck;
  random?: () => number;
}

interface Managed {
  state: PodState;
  link: AgentLink | null;
  failures: number;
}

export class Controller {
  private readonly managed = new Map<string, Managed>();
  private readonly queue: WorkQueue;
  private readonly limiter: EventLimiter;
  private leading = false;
  private resync: NodeJS.Timeout | null = null;
  private policyTimer: NodeJS.Timeout | null = null;
  private policyPassRunning = false;

  constructor(private readonly d: ControllerDeps) {
    this.limiter = new EventLimiter(() => d.clock.nowMs());
    this.queue = new WorkQueue((k) => this.reconcile(k), (k, e) => this.failed(k, e));
    d.pods.onChange((pod, kind) => this.podChanged(pod, kind));
    d.policies.onChange(() => this.policiesChanged());
  }

  /** This replica holds the lease: follow agents, write. */
  startLeading(): void {
    if (this.leading) return;
    this.leading = true;
    this.d.log.info('leading: reconciling enrolled pods', { pods: this.d.pods.list().length, policies: this.d.policies.list().length });
    for (const pod of this.d.pods.list()) this.queue.add(podKey(pod));
    this.schedulePolicyPass();
    this.resync = setInterval(() => {
      for (const pod of this.d.pods.list()) this.queue.add(podKey(pod));
      this.schedulePolicyPass();
    }, RESYNC_MS);
    this.resync.unref();
  }

  /** Lost the lease (or shutting down): stop writing at once; another replica takes over. */
  stopLeading(): void {
    if (!this.leading) return;
    this.leading = false;
    if (this.resync) clearInterval(this.resync);
    if (this.policyTimer) clearTimeout(this.policyTimer);
    this.resync = this.policyTimer = null;
    for (const m of this.managed.values()) m.link?.stop();
    // Forget everything: the next leader (maybe this one again) reads the FdStores back.
    this.managed.clear();
    this.d.log.info('stopped leading');
  }

  stop(): void {
    this.stopLeading();
    this.queue.stop();
  }

  get isLeading(): boolean {
    return this.leading;
  }

  private podChanged(pod: Pod, kind: ChangeKind): void {
    const key = podKey(pod);
    if (kind === 'delete') this.forget(key);
    else if (this.leading) this.queue.add(key);
    this.schedulePolicyPass();
  }

  private policiesChanged(): void {
    if (!this.leading) return;
    // A policy can move any pod of its namespace: look at them all (writes only on change).
    for (const pod of this.d.pods.list()) this.queue.add(podKey(pod));
    this.schedulePolicyPass();
  }

  private forget(key: string): void {
    const m = this.managed.get(key);
    m?.link?.stop();
    this.managed.delete(key);
    this.limiter.forget(key);
    this.d.metrics.podsManaged(this.managed.size);
  }

  private async reconcile(key: string): Promise<void> {
    this.d.metrics.queueDepth(this.queue.depth);
    if (!this.leading) return;
    const [ns, name] = key.split('/') as [string, string];
    const pod = this.d.pods.get(ns, name);
    if (!pod) return this.forget(key);
    let m = this.managed.get(key);
    if (!m) {
      m = { state: newPodState(), link: null, failures: 0 };
      this.managed.set(key, m);
      this.d.metrics.podsManaged(this.managed.size);
    }
    this.follow(key, pod, m);
    await syncPod(pod, m.state, {
      api: this.d.api,
      clock: this.d.clock,
      limiter: this.limiter,
      policies: () => this.d.policies.list(),
      requeue: (ms) => this.queue.addAfter(key, ms),
      eventSent: (r) => this.d.metrics.eventSent(r),
    });
    m.failures = 0;
    this.d.metrics.reconciled('ok');
    this.d.metrics.eventsSuppressed(this.limiter.suppressed);
  }

  /** Start, move or stop the pod's agent long-poll. */
  private follow(key: string, pod: Pod, m: Managed): void {
    const target = agentTarget(pod);
    if (target === null) {
      m.link?.stop();
      m.link = null;
      return;
    }
    if (m.link) return m.link.retarget(target);
    m.link = this.d.agents.open(key, target, {
      status: (s: AgentStatus) => {
        m.state.agent = s;
        m.state.unreachable = null;
        this.queue.add(key);
      },
      unreachable: (why: string) => {
        m.state.agent = null;
        m.state.unreachable = why;
        this.queue.add(key);
      },
    });
  }

  private failed(key: string, e: unknown): number | null {
    this.d.metrics.reconciled('error');
    const m = this.managed.get(key);
    const failures = m ? ++m.failures : 1;
    // A 404 on our own FdStore (deleted by hand, or the pod went away): read it again.
    if (m && statusOf(e) === 404) m.state.storeKnown = false;
    const retry = jitteredDelayMs(failures, this.d.random ?? Math.random);
    this.d.log.warning('reconcile failed, retrying', { pod: key, status: statusOf(e), error: String((e as Error).message ?? e).slice(0, 300), retryMs: retry });
    return retry;
  }

  private schedulePolicyPass(): void {
    if (!this.leading || this.policyTimer) return;
    this.policyTimer = setTimeout(() => {
      this.policyTimer = null;
      void this.policyPass();
    }, POLICY_PASS_MS);
    this.policyTimer.unref();
  }

  private async policyPass(): Promise<void> {
    if (this.policyPassRunning) return this.schedulePolicyPass();
    this.policyPassRunning = true;
    try {
      const policies = this.d.policies.list();
      const statuses = policyStatuses(policies, this.d.pods.list(), this.d.checkConfig, this.d.clock.nowIso());
      for (const [p, status] of statuses) {
        if (!this.leading) return;
        if (sameStatus(p.status, status)) continue;
        try {
          await this.d.api.patchPolicyStatus(p.metadata.namespace, p.metadata.name, status);
        } catch (e) {
          // 404: deleted meanwhile. Others: the next pass (resync) tries again.
          if (statusOf(e) !== 404) {
            this.d.log.warning('policy status write failed', { policy: `${p.metadata.namespace}/${p.metadata.name}`, status: statusOf(e) });
            this.schedulePolicyPass();
          }
        }
      }
    } finally {
      this.policyPassRunning = false;
    }
  }
}
