/**
 * `Watched<T>`: a cache of one label-selected collection that never stops watching.
 *
 * client-node 1.4.0's informer stops for good on any error but 410, resolves `start()`
 * even when its list failed, has no watch timeout, no relist and no back-off
 * (KUBE-NOTES 1.2-1.3). This wrapper runs it in generations (generation.ts) and adds:
 * - restart on every failure with capped, jittered back-off (backoff.ts);
 * - an inactivity timeout: no event and no (re)connect for `inactivityMs` means the
 *   connection is stalled, and the informer is rebuilt;
 * - a periodic full relist (`relistMs`): a fresh list that re-emits every object, so a
 *   level-triggered reconcile catches up on anything a watch may have missed;
 * - 410 Gone: ListWatch relists by itself; objects gone from the new list get `delete`.
 *
 * Objects are the API server's JSON as sent (timestamps are strings even where
 * client-node's types say Date), the same shape from list and from watch (rawget.ts).
 * The cache outlives generations: during an outage `list()` and `get()` answer with the
 * last known state, and a new generation's list is diffed against it (add / update /
 * delete), so a delete that happened while disconnected is still reported.
 *
 * Handlers run synchronously, after the cache is updated. A handler that throws (or
 * returns a promise that rejects) is counted and logged, never propagated.
 */
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import { Backoff, type BackoffOptions } from './backoff.js';
import { API_ERROR_KINDS, errorMessage } from './client.js';
import { Generation, type GenerationTiming, type WatchErrorKind } from './generation.js';
import { getJson } from './rawget.js';
import type { WatchSource } from './source.js';
import { RateLimiter } from '../../log/ratelimit.js';
import type { Logger } from '../../log/log.js';

export { collectionPath, enrolledPods, fdStorePolicies, ENROLLED_LABEL, ENROLLED_SELECTOR, type WatchSource } from './source.js';

/** Relist every 10 min (Pepr/kubernetes-fluent-client: 600 s; kubebuilder resyncs from cache every 10 h). */
export const WATCH_RELIST_MS = 10 * 60_000;
/** Each watch asks the server to end it after 5-10 min (client-go's minWatchTimeout, same jitter). */
export const WATCH_TIMEOUT_MIN_SECONDS = 5 * 60;
/**
 * A healthy quiet watch is silent at most until the server ends it (10 min) and we
 * reconnect; 12 min of silence is therefore a stalled connection.
 */
export const WATCH_INACTIVITY_MS = 12 * 60_000;
/** The API server sends a watch's response headers at once; 30 s without them is a stall. */
export const WATCH_CONNECT_TIMEOUT_MS = 30_000;
/** A list of thousands of pods takes seconds; a minute without the whole body is a stall. */
export const LIST_TIMEOUT_MS = 60_000;

export type ChangeKind = 'add' | 'update' | 'delete';
export type ChangeListener<T> = (obj: T, kind: ChangeKind) => void | Promise<void>;

export interface WatchTiming extends GenerationTiming {
  relistMs: number;
}

export const DEFAULT_WATCH_TIMING: WatchTiming = {
  relistMs: WATCH_RELIST_MS,
  inactivityMs: WATCH_INACTIVITY_MS,
  connectTimeoutMs: WATCH_CONNECT_TIMEOUT_MS,
  listTimeoutMs: LIST_TIMEOUT_MS,
  watchTimeoutSeconds: WATCH_TIMEOUT_MIN_SECONDS,
};

export interface WatchedOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  source: WatchSource;
  /** For logs and metric labels: 'pods', 'fdstorepolicies'. */
  name: string;
  log: Logger;
  timing?: Partial<WatchTiming>;
  backoff?: BackoffOptions;
  /** Ask for BOOKMARK events (default true; 1.20 supports them). */
  bookmarks?: boolean;
  /** Replaces the list call (default: a raw GET of `source`). Gets a signal to honour. */
  list?: (signal: AbortSignal) => Promise<KubernetesListObject<T>>;
  random?: () => number;
  /** Monotonic milliseconds. */
  now?: () => number;
}

export interface WatchStats {
  /** Informers built (1 + restarts + relists). */
  generations: number;
  /** Informers rebuilt after a failure. */
  restarts: number;
  /** Periodic full relists. */
  relists: number;
  /** Successful lists, relists after 410 included. */
  lists: number;
  /** 410 Gone answers (resourceVersion too old). */
  gone: number;
  /** Watch responses received (each one a (re)connect). */
  watches: number;
  events: Record<ChangeKind, number>;
  errors: Record<WatchErrorKind, number>;
  handlerErrors: number;
  objects: number;
  synced: boolean;
  connected: boolean;
}

const WATCH_ERROR_KINDS: readonly WatchErrorKind[] = [...API_ERROR_KINDS, 'inactivity', 'connect-timeout', 'flapping'];
/** Handler failures and internal errors: at most 10 log lines per 10 s each. */
const LOG_LIMIT = { burst: 10, intervalMs: 10_000 };

export class Watched<T extends KubernetesObject> {
  /** Resolves after the first successful list (client-node's start() resolves even when it failed). */
  readonly synced: Promise<void>;
  private resolveSynced!: () => void;
  private rejectSynced!: (err: Error) => void;
  private isSynced = false;
  private readonly cache = new Map<string, T>();
  private readonly listeners = new Set<ChangeListener<T>>();
  private readonly timing: WatchTiming;
  private readonly backoff: Backoff;
  private readonly now: () => number;
  private readonly random: () => number;
  private readonly limiter: RateLimiter;
  private gen: Generation<T> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private relistTimer: NodeJS.Timeout | undefined;
  private started = false;
  private stopped = false;
  /** Monotonic ms of the last answer from the server (see lastProgressMs). */
  private lastProgress: number;
  private readonly counts = {
    generations: 0,
    restarts: 0,
    relists: 0,
    lists: 0,
    gone: 0,
    watches: 0,
    handlerErrors: 0,
    events: { add: 0, update: 0, delete: 0 } as Record<ChangeKind, number>,
    errors: Object.fromEntries(WATCH_ERROR_KINDS.map((k) => [k, 0])) as Record<WatchErrorKind, number>,
  };

  constructor(private readonly o: WatchedOptions<T>) {
    this.timing = { ...DEFAULT_WATCH_TIMING, ...o.timing };
    this.now = o.now ?? (() => performance.now());
    this.random = o.random ?? Math.random;
    this.backoff = new Backoff({ random: this.random, now: this.now, ...o.backoff });
    this.limiter = new RateLimiter(LOG_LIMIT, this.now);
    this.lastProgress = this.now();
    this.synced = new Promise<void>((resolve, reject) => {
      this.resolveSynced = resolve;
      this.rejectSynced = reject;
    });
    this.synced.catch(() => {}); // stop() before sync rejects it: only awaiters should see that
  }

  on(_event: 'change', fn: ChangeListener<T>): this {
    this.listeners.add(fn);
    return this;
  }

  off(_event: 'change', fn: ChangeListener<T>): this {
    this.listeners.delete(fn);
    return this;
  }

  /** For logs, metrics and /healthz: 'pods', 'fdstorepolicies'. */
  get name(): string {
    return this.o.name;
  }

  /**
   * Monotonic ms (the `now` clock) of the last sign that this watch works: a list
   * completed (first, periodic or after 410), a watch opened, an event or BOOKMARK
   * arrived, or the server ended a watch cleanly. Construction time before any. A
   * healthy watch moves it at least every relistMs (10 min), and about every minute
   * with bookmarks; failures and back-off never move it.
   */
  lastProgressMs(): number {
    return this.lastProgress;
  }

  start(): this {
    if (this.started) return this;
    this.started = true;
    this.lastProgress = this.now();
    this.startGeneration();
    return this;
  }

  /** Stop watching: timers cleared, requests aborted, sockets destroyed. Idempotent. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.restartTimer);
    clearTimeout(this.relistTimer);
    this.gen?.retire();
    this.gen = undefined;
    if (!this.isSynced) this.rejectSynced(Object.assign(new Error(`watch ${this.o.name} stopped before its first list`), { code: 'ERR_WATCH_STOPPED' }));
    // Let the generation's second socket sweep (setImmediate) run before we return.
    await new Promise<void>((resolve) => setImmediate(resolve));
  }

  /** The cached objects (all namespaces, or one). Live objects: do not mutate them. */
  list(namespace?: string): T[] {
    const all = [...this.cache.values()];
    return namespace === undefined ? all : all.filter((o) => (o.metadata?.namespace ?? '') === namespace);
  }

  get(namespace: string, name: string): T | undefined {
    return this.cache.get(key(namespace, name));
  }

  stats(): WatchStats {
    const c = this.counts;
    return {
      ...c,
      events: { ...c.events },
      errors: { ...c.errors },
      objects: this.cache.size,
      synced: this.isSynced,
      connected: this.gen?.established ?? false,
    };
  }

  private startGeneration(): void {
    if (this.stopped) return;
    const { kc, source } = this.o;
    const list = this.o.list ?? ((signal: AbortSignal) => getJson<KubernetesListObject<T>>(kc, source.path, selectors(source), signal));
    const gen: Generation<T> = new Generation<T>({
      kc,
      path: source.path,
      labelSelector: source.labelSelector,
      fieldSelector: source.fieldSelector,
      bookmarks: this.o.bookmarks ?? true,
      list,
      timing: this.timing,
      random: this.random,
      now: this.now,
      internalError: (err) => this.logLimited('internal', 'watch internal error', { error: errorMessage(err) }),
      hooks: {
        listed: (items) => gen === this.gen && this.onListed(gen, items),
        event: (kind, obj) => gen === this.gen && this.onEvent(kind, obj),
        failed: (kind, err) => gen === this.gen && this.onFailed(kind, err),
        gone: () => gen === this.gen && this.counts.gone++,
        watchStarted: () => gen === this.gen && this.counts.watches++,
        activity: () => {
          if (gen === this.gen) this.lastProgress = this.now();
        },
      },
    });
    this.gen = gen;
    this.counts.generations++;
    gen.start();
  }

  private onListed(gen: Generation<T>, items: T[]): void {
    this.counts.lists++;
    this.backoff.succeeded();
    const next = new Map<string, T>();
    for (const item of items) next.set(keyOf(item), item);
    const changes: [T, ChangeKind][] = [];
    for (const [k, old] of this.cache) if (!next.has(k)) changes.push([old, 'delete']);
    for (const [k, item] of next) changes.push([item, this.cache.has(k) ? 'update' : 'add']);
    this.cache.clear();
    for (const [k, item] of next) this.cache.set(k, item);
    if (this.relistTimer === undefined) {
      this.relistTimer = setTimeout(() => this.relist(gen), this.timing.relistMs);
    }
    if (!this.isSynced) {
      this.isSynced = true;
      this.o.log.info('watch synced', { watch: this.o.name, objects: this.cache.size });
      this.resolveSynced();
    }
    for (const [obj, kind] of changes) this.emit(obj, kind);
  }

  private onEvent(kind: ChangeKind, obj: T): void {
    const k = keyOf(obj);
    const old = this.cache.get(k);
    if (kind === 'delete') {
      if (old === undefined) return; // already removed by a list diff
      this.cache.delete(k);
      this.emit(obj, 'delete');
      return;
    }
    // ListWatch replays its list as add/update callbacks: onListed already took them.
    if (old !== undefined && old.metadata?.resourceVersion === obj.metadata?.resourceVersion) return;
    this.cache.set(k, obj);
    this.emit(obj, old === undefined ? 'add' : 'update');
  }

  private onFailed(kind: WatchErrorKind, err: unknown): void {
    this.counts.errors[kind]++;
    this.counts.restarts++;
    this.gen = undefined;
    clearTimeout(this.relistTimer);
    this.relistTimer = undefined;
    const delayMs = this.backoff.next();
    // A 403 names the rule the role lacks (rbac.ts declares what each watch needs).
    const calls = this.o.source.calls;
    const needs = kind === 'forbidden' && calls ? `${calls.list.verb},${calls.watch.verb} ${calls.list.resource}` : undefined;
    this.o.log.warning('watch restarting', { watch: this.o.name, reason: kind, error: errorMessage(err), delayMs, attempt: this.backoff.attempt, needs });
    this.restartTimer = setTimeout(() => this.startGeneration(), delayMs);
  }

  /** The periodic full relist: a new generation lists afresh; the old one is retired quietly. */
  private relist(gen: Generation<T>): void {
    this.relistTimer = undefined;
    if (gen !== this.gen || this.stopped) return;
    this.counts.relists++;
    gen.retire();
    this.o.log.debug('watch relist', { watch: this.o.name, objects: this.cache.size });
    this.startGeneration();
  }

  private emit(obj: T, kind: ChangeKind): void {
    if (this.stopped) return;
    this.counts.events[kind]++;
    for (const fn of [...this.listeners]) {
      try {
        const r = fn(obj, kind);
        if (r instanceof Promise) r.catch((err: unknown) => this.handlerFailed(err));
      } catch (err) {
        this.handlerFailed(err);
      }
    }
  }

  private handlerFailed(err: unknown): void {
    this.counts.handlerErrors++;
    this.logLimited('handler', 'watch handler failed', { error: errorMessage(err) });
  }

  private logLimited(what: string, msg: string, fields: Record<string, unknown>): void {
    const v = this.limiter.take(what);
    if (v.allowed) this.o.log.error(msg, { watch: this.o.name, ...fields, suppressed: v.suppressedBefore });
  }
}

function selectors(s: WatchSource): Record<string, string | undefined> {
  return { labelSelector: s.labelSelector, fieldSelector: s.fieldSelector };
}

function key(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

function keyOf(o: KubernetesObject): string {
  return key(o.metadata?.namespace ?? '', o.metadata?.name ?? '');
}
