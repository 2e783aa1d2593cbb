/**
 * Every fdstore metric, on a Registry passed in (never prom-client's global one).
 * Events arrive as an Observer and become counters; state (stored fds, readiness,
 * limits) is read from the containers in collect(), at scrape time, so it can
 * never drift from what the agent holds.
 *
 * Labels are bounded by construction: container names come from the config, every
 * other label is one of a closed enum. Pids, fd numbers, FDNAME= and STATUS= text
 * never become labels: a client would otherwise mint series at will.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { LOG_REASONS, type LogReason, type Observer } from '../unit/observer.js';
import type { Liveness, RunPhase } from '../unit/run.js';
import { FD_TYPES, type FdType } from '../store/describe.js';
import { DROP_REASONS, type DropReason, type Entry } from '../store/store.js';
import { REJECT_REASONS, RESTORE_FAILURES, type RejectReason, type RestoreFailure } from '../unit/reasons.js';
import { STATUS_REQUEST_KINDS, type StatusRequestKind } from '../http/status.js';

/** What the metrics read from a container at scrape time (Container satisfies it). */
export interface MetricsContainer {
  readonly name: string;
  readonly store: { readonly max: number; readonly deferred: number; list(): Entry[] };
  readonly run: {
    readonly phase: RunPhase;
    readiness(): Liveness;
    liveness(): Liveness;
    watchdogMs(): number | null;
  };
}

export interface MetricsDeps {
  registry: Registry;
  /** Configured container names: every series of each exists from start (more: addContainer). */
  names: readonly string[];
  /** The live containers; empty until the agent started. */
  containers(): Iterable<MetricsContainer>;
  /** The fd's type; null when it cannot be told now (not cached, counted as other). */
  typeOf(entry: Entry): FdType | null;
  /** Wall clock, ms since the epoch (timestamps in metrics are Unix seconds). */
  wallMs(): number;
  version: string;
  /** The agent's own fd table: open fds and RLIMIT_NOFILE (every stored fd counts here). */
  processFds?(): { open: number; max: number };
  /** /status long-polls waiting now. */
  statusWaiters?(): number;
  /** The keeper as the agent uses it (docs/keeper.md); absent or null without --keeper. */
  keeper?(): KeeperMetrics | null;
}

/** What the metrics read about the keeper (agent/keeping.ts KeeperInfo satisfies it). */
export interface KeeperMetrics {
  readonly agentRestarts: number;
  readonly adoptedFds: number;
  readonly storeLost: boolean;
  connected(): boolean;
  reseeds(): number;
  unmirrored(): number;
}

export const RUN_PHASES: readonly RunPhase[] = ['unknown', 'starting', 'ready', 'reloading', 'stopping', 'exited'];
export const MESSAGE_RESULTS = ['accepted', 'rejected'] as const;

/** Restores hand fds over a local socket: milliseconds normally, seconds when stuck. */
const RESTORE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/**
 * The label naming the app container a series is about. Not `container`: a
 * PodMonitor or ServiceMonitor target already carries `container` (the scraped
 * container: the agent's sidecar), and Prometheus would rename ours to
 * `exported_container`.
 */
type C = 'app_container';

export class Metrics implements Observer {
  private readonly known: Set<string>;
  /** Store id -> type: an open fd never changes type and ids are never reused. */
  private typeCache = new Map<number, FdType>();
  private readonly lastPingSec = new Map<string, number>();
  private readonly startSec: number;

  private readonly messages: Counter<C | 'result'>;
  private readonly rejects: Counter<C | 'reason'>;
  private readonly drops: Counter<C | 'reason'>;
  private readonly storedTotal: Counter<C>;
  private readonly restores: Counter<C>;
  private readonly restoredFds: Counter<C>;
  private readonly restoreSeconds: Histogram<C>;
  private readonly restoreFailures: Counter<C | 'reason'>;
  private readonly expired: Counter<C>;
  private readonly startTimeouts: Counter<C>;
  private readonly pings: Counter<C>;
  private readonly starts: Counter<C>;
  private readonly warnings: Counter<C>;
  private readonly suppressedLines: Counter<C | 'reason'>;
  private readonly statusRequests: Counter<'kind'>;

  constructor(private readonly d: MetricsDeps) {
    this.known = new Set(d.names);
    this.startSec = d.wallMs() / 1000;
    const registers = [d.registry];
    const counter = <L extends string>(name: string, help: string, labelNames: readonly L[]): Counter<L> =>
      new Counter({ name, help, labelNames, registers });

    this.messages = counter('fdstore_notify_messages_total', 'Notify datagrams received, by result (accepted: authorized and applied; rejected: dropped whole).', ['app_container', 'result']);
    this.rejects = counter('fdstore_notify_rejected_total', 'Notify datagrams dropped whole, by reason.', ['app_container', 'reason']);
    this.drops = counter('fdstore_fds_dropped_total', 'File descriptors closed by the agent, by reason.', ['app_container', 'reason']);
    this.storedTotal = counter('fdstore_fds_stored_total', 'File descriptors added to the store (FDSTORE=1).', ['app_container']);
    this.restores = counter('fdstore_restores_total', 'Restores: stored fds handed to a starting main process.', ['app_container']);
    this.restoredFds = counter('fdstore_restored_fds_total', 'File descriptors handed out by restores.', ['app_container']);
    this.restoreSeconds = new Histogram({
      name: 'fdstore_restore_duration_seconds',
      help: 'Time to hand the stored fds to a starting main process.',
      labelNames: ['app_container'],
      buckets: RESTORE_BUCKETS,
      registers,
    });
    this.restoreFailures = counter('fdstore_restore_failures_total', 'Restore connections that ended without their fds, by reason.', ['app_container', 'reason']);
    this.expired = counter('fdstore_watchdog_expired_total', 'Watchdog failures: deadline passed without WATCHDOG=1, or WATCHDOG=trigger.', ['app_container']);
    this.startTimeouts = counter('fdstore_start_timeouts_total', 'Runs that sent no READY=1 within timeoutStartSec.', ['app_container']);
    this.pings = counter('fdstore_watchdog_pings_total', 'WATCHDOG=1 messages accepted.', ['app_container']);
    this.starts = counter('fdstore_main_process_starts_total', 'Main process starts observed (a new run each; restarts included).', ['app_container']);
    this.warnings = counter('fdstore_notify_warnings_total', 'Assignments ignored or refused with a warning (invalid values, MAINPID= refused).', ['app_container']);
    this.suppressedLines = counter(
      'fdstore_log_suppressed_total',
      'Log lines not written because of the log rate limit (per container and reason); every other metric still counts each event.',
      ['app_container', 'reason'],
    );
    this.statusRequests = counter(
      'fdstore_status_requests_total',
      'GET /status requests, by kind (now: answered at once; waited: a long-poll that waited; refused_wait: a long-poll answered at once because the most allowed were waiting; invalid: bad query, 400).',
      ['kind'],
    );
    this.stateGauges(registers);
    for (const kind of STATUS_REQUEST_KINDS) this.statusRequests.inc({ kind }, 0);
    for (const container of this.known) this.zero(container);
  }

  /**
   * A container added by a config reload: its series exist from now. Names come
   * from the config only, so the label set stays bounded by it.
   */
  addContainer(name: string): void {
    if (this.known.has(name)) return;
    this.known.add(name);
    this.zero(name);
  }

  // Observer. Arrow properties: fanout() calls them detached from the object.

  accepted = (container: string): void => {
    if (this.known.has(container)) this.messages.inc({ app_container: container, result: 'accepted' });
  };

  rejected = (container: string, reason: RejectReason): void => {
    if (!this.known.has(container)) return;
    this.messages.inc({ app_container: container, result: 'rejected' });
    this.rejects.inc({ app_container: container, reason });
  };

  dropped = (container: string, reason: DropReason, count: number): void => {
    if (this.known.has(container) && count > 0) this.drops.inc({ app_container: container, reason }, count);
  };

  stored = (container: string, count: number): void => {
    if (this.known.has(container) && count > 0) this.storedTotal.inc({ app_container: container }, count);
  };

  warn = (container: string): void => {
    if (this.known.has(container)) this.warnings.inc({ app_container: container });
  };

  stateChanged = (): void => {}; // read from the run at scrape time

  mainPid = (): void => {};

  watchdogPing = (container: string): void => {
    if (!this.known.has(container)) return;
    this.pings.inc({ app_container: container });
    this.lastPingSec.set(container, this.d.wallMs() / 1000);
  };

  watchdogFailed = (container: string, kind: 'timeout' | 'trigger' | 'start_timeout'): void => {
    if (!this.known.has(container)) return;
    if (kind === 'start_timeout') this.startTimeouts.inc({ app_container: container });
    else this.expired.inc({ app_container: container });
  };

  runStarted = (container: string): void => {
    if (this.known.has(container)) this.starts.inc({ app_container: container });
  };

  restored = (container: string, fds: number, seconds: number): void => {
    if (!this.known.has(container)) return;
    this.restores.inc({ app_container: container });
    this.restoredFds.inc({ app_container: container }, fds);
    this.restoreSeconds.observe({ app_container: container }, seconds);
  };

  /** Not an Observer event: the log observer's rate limiter reports each line it suppressed. */
  logSuppressed = (container: string, reason: LogReason): void => {
    if (this.known.has(container)) this.suppressedLines.inc({ app_container: container, reason });
  };

  /** Not an Observer event: the HTTP server reports each /status request. */
  statusRequest = (kind: StatusRequestKind): void => {
    this.statusRequests.inc({ kind });
  };

  restoreFailed = (container: string, reason: RestoreFailure): void => {
    if (this.known.has(container)) this.restoreFailures.inc({ app_container: container, reason });
  };

  /** Known series at zero before the first event (STYLE habit 10). */
  private zero(container: string): void {
    for (const result of MESSAGE_RESULTS) this.messages.inc({ app_container: container, result }, 0);
    for (const reason of REJECT_REASONS) this.rejects.inc({ app_container: container, reason }, 0);
    for (const reason of DROP_REASONS) this.drops.inc({ app_container: container, reason }, 0);
    for (const reason of LOG_REASONS) this.suppressedLines.inc({ app_container: container, reason }, 0);
    for (const reason of RESTORE_FAILURES) this.restoreFailures.inc({ app_container: container, reason }, 0);
    for (const c of [this.storedTotal, this.restores, this.restoredFds, this.expired, this.startTimeouts, this.pings, this.starts, this.warnings]) {
      c.inc({ app_container: container }, 0);
    }
    this.restoreSeconds.zero({ app_container: container });
  }

  /** Gauges computed at scrape time from the containers. */
  private stateGauges(registers: Registry[]): void {
    const gauge = <L extends string>(name: string, help: string, labelNames: readonly L[], fill: (g: Gauge<L>) => void): void => {
      new Gauge<L>({ name, help, labelNames, registers, collect() { fill(this); } });
    };
    gauge('fdstore_stored_fds', 'File descriptors held in the store, by type.', ['app_container', 'type'], (g) => this.collectStored(g));
    gauge('fdstore_fd_store_max', 'FileDescriptorStoreMax: the most fds the store holds.', ['app_container'], (g) =>
      this.perContainer(g, (c) => c.store.max),
    );
    gauge('fdstore_deferred_closes', 'Fds removed from the store while a restore was sending it, open until it ends; they count against the max.', ['app_container'], (g) =>
      this.perContainer(g, (c) => c.store.deferred),
    );
    gauge('fdstore_container_ready', '1 while the current run is ready (READY=1 seen, no STOPPING=1; RELOADING=1 counts as ready).', ['app_container'], (g) =>
      this.perContainer(g, (c) => (c.run.readiness().ok ? 1 : 0)),
    );
    gauge('fdstore_container_live', '0 once the watchdog or the start timeout failed in the current run, else 1.', ['app_container'], (g) =>
      this.perContainer(g, (c) => (c.run.liveness().ok ? 1 : 0)),
    );
    gauge('fdstore_container_state', 'Phase of the current run: 1 for the current state, 0 for the others.', ['app_container', 'state'], (g) =>
      this.collectState(g),
    );
    gauge('fdstore_watchdog_timeout_seconds', 'Effective watchdog timeout of the current run (watchdogSec or WATCHDOG_USEC=); 0 when off.', ['app_container'], (g) =>
      this.perContainer(g, (c) => (c.run.watchdogMs() ?? 0) / 1000),
    );
    gauge('fdstore_watchdog_last_ping_timestamp_seconds', 'Unix time of the last WATCHDOG=1; 0 if none since the agent started.', ['app_container'], (g) => {
      for (const container of this.known) g.set({ app_container: container }, this.lastPingSec.get(container) ?? 0);
    });
    gauge('fdstore_build_info', 'Always 1; the version of the agent in a label.', ['version'], (g) => g.set({ version: this.d.version }, 1));
    const fds = this.d.processFds;
    if (fds) {
      // The standard names (Prometheus client libraries' process collector), without prom-client's nodejs_* set.
      gauge('process_open_fds', 'Number of open file descriptors of the agent.', [], (g) => g.set(fds().open));
      gauge('process_max_fds', 'Maximum number of open file descriptors of the agent (RLIMIT_NOFILE).', [], (g) => g.set(fds().max));
    }
    const waiters = this.d.statusWaiters;
    if (waiters) gauge('fdstore_status_waiters', 'GET /status long-polls waiting now (at most 4; more are answered at once).', [], (g) => g.set(waiters()));
    gauge('fdstore_agent_start_time_seconds', 'Unix time the agent started (without a keeper a restarted agent has lost every store).', [], (g) => g.set(this.startSec));
    const keeper = this.d.keeper;
    if (keeper) {
      // Gauges, not counters: they count across agent processes (the keeper remembers), and
      // stored-fd gauges above are computed from the adopted stores, so nothing resets at a restart.
      const k = (name: string, help: string, v: (i: KeeperMetrics) => number): void =>
        gauge(name, help, [], (g) => {
          const i = keeper();
          if (i) g.set(v(i));
        });
      k('fdstore_agent_restarts', 'Agents that served this pod before this one, as the keeper remembers (0 on a first start).', (i) => i.agentRestarts);
      k('fdstore_keeper_connected', '1 while the agent is connected to its keeper.', (i) => (i.connected() ? 1 : 0));
      k('fdstore_keeper_adopted_fds', 'Stored fds and listen sockets this agent took over from the keeper at start.', (i) => i.adoptedFds);
      k('fdstore_keeper_reseeds', 'Times this agent sent everything again to a keeper that restarted.', (i) => i.reseeds());
      k('fdstore_keeper_unmirrored_fds', 'Fds not mirrored because the keeper was full: they do not survive an agent restart.', (i) => i.unmirrored());
      k('fdstore_store_lost', '1 when an earlier agent served this pod and the keeper held nothing: every store was lost (StoreLost).', (i) => (i.storeLost ? 1 : 0));
    }
  }

  /** A series per configured container, 0 until the agent holds the container. */
  private perContainer(g: Gauge<C>, value: (c: MetricsContainer) => number): void {
    g.reset();
    for (const container of this.known) g.set({ app_container: container }, 0);
    for (const c of this.d.containers()) if (this.known.has(c.name)) g.set({ app_container: c.name }, value(c));
  }

  private collectState(g: Gauge<C | 'state'>): void {
    const phases = new Map<string, RunPhase>();
    for (const c of this.d.containers()) phases.set(c.name, c.run.phase);
    for (const container of this.known) {
      for (const state of RUN_PHASES) g.set({ app_container: container, state }, phases.get(container) === state ? 1 : 0);
    }
  }

  private collectStored(g: Gauge<C | 'type'>): void {
    const counts = new Map<string, Map<FdType, number>>();
    const next = new Map<number, FdType>();
    for (const c of this.d.containers()) {
      if (!this.known.has(c.name)) continue;
      const byType = new Map<FdType, number>();
      for (const e of c.store.list()) {
        const t = this.typeOfCached(e, next);
        byType.set(t, (byType.get(t) ?? 0) + 1);
      }
      counts.set(c.name, byType);
    }
    // Only the entries still stored stay cached: the cache is bounded by the stores.
    this.typeCache = next;
    for (const container of this.known) {
      for (const type of FD_TYPES) g.set({ app_container: container, type }, counts.get(container)?.get(type) ?? 0);
    }
  }

  private typeOfCached(e: Entry, next: Map<number, FdType>): FdType {
    const cached = this.typeCache.get(e.id);
    if (cached !== undefined) {
      next.set(e.id, cached);
      return cached;
    }
    const t = this.d.typeOf(e);
    if (t === null) return 'other';
    next.set(e.id, t);
    return t;
  }
}
