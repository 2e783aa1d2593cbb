/**
 * One generation of an informer: one client-node `ListWatch` from its first list to
 * its death. watch.ts never restarts a ListWatch; when anything goes wrong it retires
 * the generation and builds a new one. Why, from client-node 1.4.0's code:
 *
 * - `ListWatch` stops for good on any error but 410 (network, 403, 5xx, abort), and
 *   `stop()` followed by `start()` is not clean: `stop()` aborts the live request,
 *   node-fetch then fails the body with AbortError, which reaches `doneHandler` as an
 *   ordinary error, so the `error` callback fires for our own stop (KUBE-NOTES 1.3).
 *   Here every callback of a retired generation is ignored.
 * - `stop()` cannot abort a watch request whose response headers have not arrived:
 *   `Watch.watch` hands its AbortController back only after `fetch` resolves, and it
 *   sends no timeout (the 30 s `AbortSignal.timeout` it builds is overwritten on the
 *   next line). A stalled connection would hang, and leak its socket, forever. So each
 *   generation hands client-node a KubeConfig whose `applyToFetchOptions` records the
 *   per-request https.Agent it creates, and retiring destroys those agents' sockets.
 * - No watch timeout and no bookmarks are requested; `TrackingWatch` adds
 *   `timeoutSeconds` (random in [min, 2*min], as client-go does) and
 *   `allowWatchBookmarks`, so a healthy quiet watch ends and reconnects on a known
 *   schedule, which is what lets an inactivity timer tell "quiet" from "stalled".
 * - After a clean end `ListWatch` reconnects at once, with no back-off. A server or
 *   proxy that ends every watch immediately would make it spin; three empty watches
 *   that end before half their timeout fail the generation ('flapping'), which backs off.
 * - Callbacks run synchronously inside client-node's async methods: a throw becomes an
 *   unhandled rejection (process exit on Node 20). Every promise client-node returns to
 *   us here is caught.
 */
import http from 'node:http';
import { ListWatch, Watch, type KubeConfig, type KubernetesListObject, type KubernetesObject } from '@kubernetes/client-node';
import { classifyError, withTimeout, type ApiErrorKind } from './client.js';

export type WatchErrorKind = ApiErrorKind | 'inactivity' | 'connect-timeout' | 'flapping';

/** Empty watches that end this early, this many times in a row, mean the watch is flapping. */
const FLAP_LIMIT = 3;

export interface GenerationTiming {
  inactivityMs: number;
  connectTimeoutMs: number;
  listTimeoutMs: number;
  watchTimeoutSeconds: number;
}

export interface GenerationHooks<T> {
  /** A list completed: the full, current set of objects (first list, or a relist after 410). */
  listed(items: T[]): void;
  /** An object event from the ListWatch (its list callbacks included: the caller dedupes). */
  event(kind: 'add' | 'update' | 'delete', obj: T): void;
  /** The generation is dead (called at most once, never after retire()). */
  failed(kind: WatchErrorKind, err: unknown): void;
  /** A 410 Gone from the server (HTTP status or ERROR event): ListWatch relists by itself. */
  gone(): void;
  /** A watch response arrived (HTTP 200): the watch is live. */
  watchStarted(): void;
  /**
   * The server answered: a list completed, a watch opened, a line arrived (an event,
   * a BOOKMARK, an ERROR event) or a watch ended cleanly. What /healthz calls progress.
   */
  activity(): void;
}

export interface GenerationOptions<T extends KubernetesObject> {
  kc: KubeConfig;
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  bookmarks: boolean;
  list: (signal: AbortSignal) => Promise<KubernetesListObject<T>>;
  timing: GenerationTiming;
  hooks: GenerationHooks<T>;
  random: () => number;
  now: () => number;
  /** Where an error thrown inside client-node's callbacks is reported (never rethrown). */
  internalError: (err: unknown) => void;
}

export class Generation<T extends KubernetesObject> {
  private readonly ctrl = new AbortController();
  private readonly agents = new Set<http.Agent>();
  private readonly lw: ListWatch<T>;
  private dead = false;
  private lastActivity: number;
  private inactivityTimer: NodeJS.Timeout | undefined;
  private connectTimer: NodeJS.Timeout | undefined;
  private shortEnds = 0;
  /** A watch response is open right now. */
  established = false;

  constructor(private readonly o: GenerationOptions<T>) {
    this.lastActivity = o.now();
    const watch = new TrackingWatch(scopedConfig(o.kc, this), this);
    this.lw = new ListWatch<T>(o.path, watch, () => this.list(), false, o.labelSelector, o.fieldSelector);
    for (const kind of ['add', 'update', 'delete'] as const) {
      this.lw.on(kind, (obj) => this.guard(() => !this.dead && o.hooks.event(kind, obj)));
    }
    this.lw.on('error', (err) => this.guard(() => this.fail(classifyError(err), err)));
  }

  get signal(): AbortSignal {
    return this.ctrl.signal;
  }

  get alive(): boolean {
    return !this.dead;
  }

  start(): void {
    this.armInactivity(this.o.timing.inactivityMs);
    this.lw.start().catch((err: unknown) => this.fail(classifyError(err), err));
  }

  /** End this generation without reporting anything: timers cleared, requests and sockets destroyed. */
  retire(): void {
    if (this.dead) return;
    this.dead = true;
    this.established = false;
    clearTimeout(this.inactivityTimer);
    clearTimeout(this.connectTimer);
    this.lw.stop().catch(this.o.internalError);
    this.ctrl.abort(abortError());
    this.destroyAgents();
    // A watch request may have taken its agent in the microtask between our last check
    // and its socket's creation; by the next macrotask that socket exists: destroy again.
    setImmediate(() => this.destroyAgents());
  }

  private fail(kind: WatchErrorKind, err: unknown): void {
    if (this.dead) return;
    this.retire();
    this.o.hooks.failed(kind, err);
  }

  private async list(): Promise<KubernetesListObject<T>> {
    const list = await withTimeout(this.o.timing.listTimeoutMs, this.ctrl.signal, (_opts, signal) => this.o.list(signal));
    if (this.dead) throw abortError();
    this.touch();
    this.o.hooks.listed(list.items ?? []);
    return list;
  }

  // ---- called by TrackingWatch ----

  /** Query parameters client-node 1.4.0 does not send. */
  extraParams(): Record<string, string> {
    const min = this.o.timing.watchTimeoutSeconds;
    const p: Record<string, string> = { timeoutSeconds: String(Math.floor(min * (1 + this.o.random()))) };
    if (this.o.bookmarks) p.allowWatchBookmarks = 'true';
    return p;
  }

  watchRequested(): void {
    clearTimeout(this.connectTimer);
    this.connectTimer = setTimeout(
      () => this.fail('connect-timeout', new Error(`no watch response within ${this.o.timing.connectTimeoutMs} ms`)),
      this.o.timing.connectTimeoutMs,
    );
  }

  watchEstablished(): void {
    clearTimeout(this.connectTimer);
    if (this.dead) return;
    this.established = true;
    this.touch();
    this.o.hooks.watchStarted();
  }

  watchLine(phase: string, obj: unknown): void {
    this.touch();
    if (phase === 'ERROR' && (obj as { code?: unknown } | null)?.code === 410) this.o.hooks.gone();
  }

  watchEnded(err: unknown, events: number, ageMs: number, timeoutSeconds: number): void {
    clearTimeout(this.connectTimer);
    this.established = false;
    if (this.dead) return;
    if (err === null || err === undefined) {
      // Clean end: ListWatch reconnects at once from its resourceVersion.
      this.touch();
      const early = events === 0 && ageMs < (timeoutSeconds * 1000) / 2;
      this.shortEnds = early ? this.shortEnds + 1 : 0;
      if (this.shortEnds >= FLAP_LIMIT) this.fail('flapping', new Error(`${FLAP_LIMIT} empty watches in a row ended early`));
      return;
    }
    if (classifyError(err) === 'gone') this.o.hooks.gone(); // ListWatch relists; anything else reaches its 'error'
  }

  trackAgent(agent: unknown): void {
    if (!(agent instanceof http.Agent)) return;
    for (const a of this.agents) if (idle(a)) this.agents.delete(a);
    this.agents.add(agent);
    if (this.dead) agent.destroy();
  }

  /** Run a callback client-node invoked; nothing it throws or rejects may reach client-node. */
  guard(fn: () => unknown): void {
    try {
      const r = fn();
      if (isThenable(r)) r.then(undefined, (err: unknown) => this.internal(err));
    } catch (err) {
      this.internal(err);
    }
  }

  /** A retired generation's requests fail with AbortError by design: not worth a log line. */
  private internal(err: unknown): void {
    if (!this.dead) this.o.internalError(err);
  }

  private touch(): void {
    this.lastActivity = this.o.now();
    if (!this.dead) this.o.hooks.activity();
  }

  private armInactivity(ms: number): void {
    this.inactivityTimer = setTimeout(() => {
      const idleMs = this.o.now() - this.lastActivity;
      const limit = this.o.timing.inactivityMs;
      if (idleMs >= limit) this.fail('inactivity', new Error(`no watch event or reconnect for ${Math.round(idleMs)} ms`));
      else this.armInactivity(limit - idleMs);
    }, Math.max(1, ms));
  }

  private destroyAgents(): void {
    for (const a of this.agents) a.destroy();
    this.agents.clear();
  }
}

/** client-node's Watch, reporting to its generation and adding the parameters 1.4.0 lacks. */
class TrackingWatch<T extends KubernetesObject> extends Watch {
  constructor(
    kc: KubeConfig,
    private readonly gen: Generation<T>,
  ) {
    super(kc);
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    const gen = this.gen;
    if (!gen.alive) return new AbortController(); // never start a request for a dead generation
    const extra = gen.extraParams();
    const startedAt = performance.now();
    let ended = false;
    let events = 0;
    gen.watchRequested();
    const ctrl = await super.watch(
      path,
      { ...queryParams, ...extra },
      (phase, obj, raw) => {
        events++;
        gen.watchLine(phase, obj);
        gen.guard(() => callback(phase, obj, raw));
      },
      (err) => {
        ended = true;
        gen.watchEnded(err, events, performance.now() - startedAt, Number(extra.timeoutSeconds));
        gen.guard(() => done(err));
      },
    );
    if (!ended) gen.watchEstablished();
    return ctrl;
  }
}

/**
 * The generation's view of the KubeConfig: the same clusters, users and credentials
 * (prototype delegation), with `applyToFetchOptions` (which client-node's Watch calls
 * once per request, making a new https.Agent) reporting that agent to the generation.
 */
function scopedConfig<T extends KubernetesObject>(kc: KubeConfig, gen: Generation<T>): KubeConfig {
  const scoped = Object.create(kc) as KubeConfig;
  scoped.applyToFetchOptions = async (opts) => {
    gen.signal.throwIfAborted(); // rejects Watch.watch; its caller's promise is guarded
    const init = await kc.applyToFetchOptions(opts);
    gen.trackAgent(init.agent);
    gen.signal.throwIfAborted();
    return init;
  };
  return scoped;
}

function idle(a: http.Agent): boolean {
  return Object.keys(a.sockets).length === 0 && Object.keys(a.requests).length === 0;
}

function isThenable(x: unknown): x is PromiseLike<unknown> {
  return typeof (x as { then?: unknown } | null)?.then === 'function';
}

function abortError(): Error {
  const e = new Error('generation retired');
  e.name = 'AbortError';
  return e;
}
