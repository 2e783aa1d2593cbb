/**
 * Leader election for the operator's replicas on one coordination.k8s.io/v1 Lease,
 * after client-go's tools/leaderelection, with the same three durations:
 *
 * - leaseDuration (15 s): a candidate takes a Lease whose record it has seen unchanged
 *   for this long (lease-record.ts: measured on its own monotonic clock);
 * - renewDeadline (10 s): a leader that has not renewed successfully within this time
 *   of its last successful renew *stops acting*; onStoppedLeading runs then, from a timer
 *   that does not wait for any request. The other replica cannot take over earlier than
 *   leaseDuration after it saw that renew, which the server applied after the renew
 *   began: so the old leader stops at least leaseDuration - renewDeadline (5 s) before
 *   anyone else can start;
 * - retryPeriod (2 s, +20 % jitter): how often a candidate tries, and how soon a leader
 *   retries a failed renew. A leader renews every renewInterval (5 s).
 *
 * Writes use optimistic concurrency: each replace carries the resourceVersion last read
 * or written, so of two racing candidates one gets 409 and re-reads. A leader renews
 * without a read (its last write has the current resourceVersion); a 409 means someone
 * else wrote, and it re-reads. Every request is bounded (client-node 1.4.0 has no
 * request timeout). stop() releases the Lease (no holder, 1 s duration), so the other
 * replica takes over at its next try instead of waiting out the 15 s.
 */
import type { ConfigurationOptions, CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import { API_ERROR_KINDS, classifyError, errorMessage, withTimeout, type ApiErrorKind } from './client.js';
import { claimed, freshLease, holderIdentity, judge, observe, released, type Observation } from './lease-record.js';
import { API_CALLS, type ApiCall } from '../rbac.js';
import { RateLimiter } from '../../log/ratelimit.js';
import type { Logger } from '../../log/log.js';

export const LEASE_DURATION_SECONDS = 15;
export const LEASE_RENEW_DEADLINE_MS = 10_000;
export const LEASE_RENEW_INTERVAL_MS = 5_000;
export const LEASE_RETRY_PERIOD_MS = 2_000;
/** One Lease request gives up after 4 s: two attempts fit within the renew deadline. */
export const LEASE_REQUEST_TIMEOUT_MS = 4_000;
/** Retries wait retryPeriod plus up to 20 % more, so two candidates drift apart. */
const RETRY_JITTER = 0.2;
/** Failed attempts every 2 s while the API is away: at most 5 log lines a minute per error kind. */
const LOG_LIMIT = { burst: 5, intervalMs: 60_000 };

export interface LeaseTiming {
  leaseDurationSeconds: number;
  renewDeadlineMs: number;
  renewIntervalMs: number;
  retryPeriodMs: number;
  requestTimeoutMs: number;
}

export const DEFAULT_LEASE_TIMING: LeaseTiming = {
  leaseDurationSeconds: LEASE_DURATION_SECONDS,
  renewDeadlineMs: LEASE_RENEW_DEADLINE_MS,
  renewIntervalMs: LEASE_RENEW_INTERVAL_MS,
  retryPeriodMs: LEASE_RETRY_PERIOD_MS,
  requestTimeoutMs: LEASE_REQUEST_TIMEOUT_MS,
};

export interface ElectorOptions {
  api: CoordinationV1Api;
  namespace: string;
  name: string;
  /** Default: holderIdentity() = pod name + random suffix. */
  identity?: string;
  /** Called when this replica becomes the leader. Must not block. */
  onStartedLeading: () => void;
  /** Called when it must stop acting as leader: lost, renew deadline passed, or stop(). */
  onStoppedLeading: () => void;
  /** Called when the observed holder changes ('' = none). */
  onNewLeader?: (holder: string) => void;
  log: Logger;
  timing?: Partial<LeaseTiming>;
  random?: () => number;
  /** Monotonic milliseconds. */
  now?: () => number;
  /** Wall-clock milliseconds, for the Lease's acquireTime/renewTime. */
  wallClock?: () => number;
}

export interface ElectorStats {
  leading: boolean;
  acquisitions: number;
  renewals: number;
  lost: number;
  conflicts: number;
  errors: Record<ApiErrorKind, number>;
  /** Monotonic start time of the last successful acquire or renew (the renew deadline counts from it). */
  renewedAt: number | undefined;
}

type Outcome = 'held' | 'not-held';

export class LeaderElector {
  readonly identity: string;
  private readonly t: LeaseTiming;
  private readonly now: () => number;
  private readonly wall: () => number;
  private readonly random: () => number;
  private readonly limiter: RateLimiter;
  private leading = false;
  /** Bumped at every change of leadership, so a request begun in an earlier term cannot act. */
  private term = 0;
  private started = false;
  private stopped = false;
  private loopTimer: NodeJS.Timeout | undefined;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private inflight: AbortController | undefined;
  /** The last request made, for the log line of a failure (a 403 then says which verb the Role lacks). */
  private lastCall: ApiCall | undefined;
  private lease: V1Lease | undefined;
  private obs: Observation | undefined;
  private lastLeader: string | undefined;
  private renewedAt: number | undefined;
  private readonly counts = {
    acquisitions: 0,
    renewals: 0,
    lost: 0,
    conflicts: 0,
    errors: Object.fromEntries(API_ERROR_KINDS.map((k) => [k, 0])) as Record<ApiErrorKind, number>,
  };

  constructor(private readonly o: ElectorOptions) {
    this.identity = o.identity ?? holderIdentity();
    this.t = { ...DEFAULT_LEASE_TIMING, ...o.timing };
    const t = this.t;
    if (!(t.renewDeadlineMs < t.leaseDurationSeconds * 1000 && t.retryPeriodMs * (1 + RETRY_JITTER) < t.renewDeadlineMs)) {
      throw new RangeError('lease timing: need retryPeriod * 1.2 < renewDeadline < leaseDuration');
    }
    if (!(t.renewIntervalMs < t.renewDeadlineMs && t.requestTimeoutMs <= t.renewDeadlineMs && Number.isInteger(t.leaseDurationSeconds))) {
      throw new RangeError('lease timing: need renewInterval < renewDeadline, requestTimeout <= renewDeadline, whole seconds');
    }
    this.now = o.now ?? (() => performance.now());
    this.wall = o.wallClock ?? Date.now;
    this.random = o.random ?? Math.random;
    this.limiter = new RateLimiter(LOG_LIMIT, this.now);
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** The holder last seen in the Lease ('' = none, undefined = not read yet). */
  get leader(): string | undefined {
    return this.lastLeader;
  }

  stats(): ElectorStats {
    return { leading: this.leading, ...this.counts, errors: { ...this.counts.errors }, renewedAt: this.renewedAt };
  }

  start(): this {
    if (this.started || this.stopped) return this;
    this.started = true;
    this.schedule(0);
    return this;
  }

  /** Stop campaigning; a leader stops acting first, then releases the Lease. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.loopTimer);
    clearTimeout(this.deadlineTimer);
    this.inflight?.abort();
    if (!this.leading) return;
    this.leading = false;
    this.term++;
    this.guard(this.o.onStoppedLeading);
    await this.release();
  }

  private schedule(ms: number): void {
    this.loopTimer = setTimeout(() => void this.tick(), ms);
  }

  private retryDelay(): number {
    return this.t.retryPeriodMs * (1 + RETRY_JITTER * this.random());
  }

  private async tick(): Promise<void> {
    this.loopTimer = undefined;
    if (this.stopped) return;
    const term = this.term;
    const wasLeading = this.leading;
    const startedAt = this.now();
    let outcome: Outcome | 'error';
    try {
      outcome = await this.attempt();
    } catch (err) {
      outcome = 'error';
      this.failed(err);
    }
    if (this.stopped) return;
    if (term === this.term) {
      if (outcome === 'held') this.held(wasLeading, startedAt);
      else if (outcome === 'not-held' && wasLeading) this.lose('another holder has the lease');
    }
    this.schedule(this.leading && outcome === 'held' ? this.t.renewIntervalMs : this.retryDelay());
  }

  /** One try to acquire or renew. Throws on errors other than conflicts and absence. */
  private async attempt(): Promise<Outcome> {
    const { api, namespace, name } = this.o;
    const dur = this.t.leaseDurationSeconds;
    if (this.leading && this.lease !== undefined) {
      const current = this.lease;
      const renewed = await this.write(() => this.req(API_CALLS.updateLease, (o) => api.replaceNamespacedLease({ namespace, name, body: claimed(current, this.identity, dur, this.wall()) }, o)));
      if (renewed !== undefined) return 'held';
      // 409: someone else wrote the Lease; read it and judge afresh.
    }
    let lease: V1Lease;
    try {
      lease = await this.req(API_CALLS.getLease, (o) => api.readNamespacedLease({ namespace, name }, o));
    } catch (err) {
      if (classifyError(err) !== 'not-found') throw err;
      const created = await this.write(() => this.req(API_CALLS.createLease, (o) => api.createNamespacedLease({ namespace, body: freshLease(namespace, name, this.identity, dur, this.wall()) }, o)));
      return created !== undefined ? 'held' : 'not-held';
    }
    this.seen(lease);
    const verdict = judge(this.obs!, this.identity, this.now());
    if (verdict.action === 'wait') return 'not-held';
    const taken = await this.write(() => this.req(API_CALLS.updateLease, (o) => api.replaceNamespacedLease({ namespace, name, body: claimed(lease, this.identity, dur, this.wall()) }, o)));
    return taken !== undefined ? 'held' : 'not-held';
  }

  /** A create or replace: the Lease written, or undefined when another writer won (409). */
  private async write(fn: () => Promise<V1Lease>): Promise<V1Lease | undefined> {
    try {
      const lease = await fn();
      this.seen(lease);
      return lease;
    } catch (err) {
      if (classifyError(err) !== 'conflict') throw err;
      this.counts.conflicts++;
      return undefined;
    }
  }

  private seen(lease: V1Lease): void {
    this.lease = lease;
    this.obs = observe(this.obs, lease, this.now());
    if (this.obs.holder !== this.lastLeader) {
      this.lastLeader = this.obs.holder;
      const holder = this.obs.holder;
      if (this.o.onNewLeader) this.guard(() => this.o.onNewLeader!(holder));
    }
  }

  private held(wasLeading: boolean, startedAt: number): void {
    if (wasLeading) {
      this.counts.renewals++;
    } else {
      this.leading = true;
      this.term++;
      this.counts.acquisitions++;
      this.o.log.info('lease acquired', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.identity });
      this.guard(this.o.onStartedLeading);
    }
    // Measured from the start of the request that succeeded: the server applied it later.
    this.renewedAt = startedAt;
    clearTimeout(this.deadlineTimer);
    const left = startedAt + this.t.renewDeadlineMs - this.now();
    this.deadlineTimer = setTimeout(() => this.lose(`no successful renew within ${this.t.renewDeadlineMs} ms`), Math.max(0, left));
  }

  private lose(reason: string): void {
    if (!this.leading) return;
    this.leading = false;
    this.term++;
    clearTimeout(this.deadlineTimer);
    this.inflight?.abort();
    this.counts.lost++;
    this.o.log.warning('lease lost', { lease: `${this.o.namespace}/${this.o.name}`, identity: this.identity, reason });
    this.guard(this.o.onStoppedLeading);
  }

  /** Give the Lease up so the next candidate need not wait for it to expire. */
  private async release(): Promise<void> {
    const { api, namespace, name } = this.o;
    for (let i = 0; i < 2 && this.lease !== undefined; i++) {
      const lease = this.lease;
      try {
        await this.req(API_CALLS.updateLease, (o) => api.replaceNamespacedLease({ namespace, name, body: released(lease, this.wall()) }, o));
        this.o.log.info('lease released', { lease: `${namespace}/${name}`, identity: this.identity });
        return;
      } catch (err) {
        if (classifyError(err) !== 'conflict') return this.failed(err);
        // Our last renew may have been applied after we aborted it: re-read, release only if still ours.
        try {
          const current = await this.req(API_CALLS.getLease, (o) => api.readNamespacedLease({ namespace, name }, o));
          this.lease = current.spec?.holderIdentity === this.identity ? current : undefined;
        } catch (readErr) {
          return this.failed(readErr);
        }
      }
    }
  }

  /** One Lease request, declared as its rbac.ts entry (the chart's Role grants exactly those). */
  private async req<T>(call: ApiCall, fn: (opts: ConfigurationOptions) => Promise<T>): Promise<T> {
    this.lastCall = call;
    const ctrl = new AbortController();
    this.inflight = ctrl;
    try {
      return await withTimeout(this.t.requestTimeoutMs, ctrl.signal, fn);
    } finally {
      if (this.inflight === ctrl) this.inflight = undefined;
    }
  }

  private failed(err: unknown): void {
    const kind = classifyError(err);
    this.counts.errors[kind]++;
    if (kind === 'aborted') return; // ours: lose() or stop()
    const v = this.limiter.take(kind);
    if (v.allowed) {
      const request = this.lastCall ? `${this.lastCall.verb} ${this.lastCall.resource}` : undefined;
      this.o.log.warning('lease request failed', { lease: `${this.o.namespace}/${this.o.name}`, kind, request, error: errorMessage(err), leading: this.leading, suppressed: v.suppressedBefore });
    }
  }

  private guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.o.log.error('lease callback failed', { lease: `${this.o.namespace}/${this.o.name}`, error: errorMessage(err) });
    }
  }
}
