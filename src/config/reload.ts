/**
 * The live config file (`fdstore agent --config FILE`), systemd's daemon-reload:
 * re-read every `pollMs` and on SIGHUP, applied when its content changed (sha256),
 * kept as it was when the new one cannot be used.
 *
 * In a pod the file is the pod's fdstore.dev/config annotation projected by a
 * downwardAPI volume. The kubelet rewrites it by writing a new timestamped directory
 * and renaming a `..data_tmp` symlink over `..data`; FILE is a symlink through
 * `..data`. Opening the path anew on every check follows that swap, and the rename
 * is atomic, so a check sees the old file or the new one, never a mix. (inotify on
 * the path would watch the old inode; polling a file of at most 256 KiB every few
 * seconds costs nothing measurable.)
 *
 * A file that cannot be used (unreadable, too big, not YAML, an invalid field, or
 * refused by the agent: a listen address, the fd budget) changes nothing: the last
 * good config stays in force, the file is counted rejected once, logged once per
 * distinct error (rate-limited), and shown as `error` in state() until a good one
 * is applied. The same file is not examined again until it changes or SIGHUP asks.
 *
 * Clock, timers, reading and applying are injected: tests drive it directly.
 */
import { createHash } from 'node:crypto';
import type { ConfigState } from '../status/types.js';
import type { Logger } from '../log/log.js';
import { RateLimiter, type RateLimit } from '../log/ratelimit.js';
import { carryOver, loadConfig, startConfig, type FlagSettings, type LoadedConfig } from './load.js';
import type { ContainerConfig } from './types.js';

/** Default check interval: the kubelet's own sync takes up to a minute or two, so 5 s adds little. */
export const CONFIG_POLL_MS = 5_000;
/** Shortest --config-poll: each check reads and hashes the whole file. */
export const CONFIG_POLL_MIN_MS = 100;
/**
 * Rejection log lines: 10 per minute. A file changes at most once per check, so
 * this only bites a SIGHUP loop or a file rewritten faster than the check interval.
 */
export const CONFIG_LOG_LIMIT: RateLimit = { burst: 10, intervalMs: 60_000 };

/**
 * Longest error message kept (state, log): a field name in the file is the
 * writer's choice, and the message is shown in the agent's status.
 */
export const CONFIG_ERROR_MAX = 512;

export type ReloadTrigger = 'poll' | 'signal';
export type ReloadResult = 'applied' | 'rejected';

/** Counters of the reloads (src/metrics/config.ts). */
export interface ConfigObserver {
  /** The file was read (a poll or SIGHUP), changed or not. */
  checked(): void;
  reloaded(result: ReloadResult): void;
}

export interface Timers<H> {
  every(fn: () => void, ms: number): H;
  clear(handle: H): void;
}

export interface ConfigSourceDeps<H> {
  /** --config; null: flags only (nothing to reload). */
  path: string | null;
  flags: FlagSettings;
  /** The file's text; throws (a ConfigError) when it cannot be read or is too big. */
  read(path: string): string;
  /**
   * Apply a new configuration to the running agent. Throws a ConfigError, having
   * changed nothing, when the agent refuses it.
   */
  apply(containers: ContainerConfig[]): void;
  log: Logger;
  /** Wall clock, ms since the epoch (loadedAt, error.at). */
  wallMs(): number;
  /** Monotonic ms (the log rate limit). */
  nowMs(): number;
  /** 0: no polling, SIGHUP only. */
  pollMs: number;
  timers: Timers<H>;
  obs?: ConfigObserver;
}

/** The first configuration, read before the agent starts: a bad file fails the start. */
export interface InitialConfig {
  loaded: LoadedConfig;
  /** sha256 of the file's text; null without a file. */
  hash: string | null;
}

export function loadInitial(path: string | null, flags: FlagSettings, read: (path: string) => string): InitialConfig {
  if (path === null) return { loaded: startConfig(flags, null), hash: null };
  const text = read(path);
  return { loaded: startConfig(flags, text, path), hash: sha256(text) };
}

export function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

export class ConfigSource<H = unknown> {
  private current: ConfigContainers;
  private policy: LoadedConfig['policy'];
  private hash: string | null;
  private loadedAtMs: number;
  private error: ConfigState['error'] = null;
  private reloads = 0;
  private rejected = 0;
  /** What the last check saw (a content hash, or a read error): unchanged means nothing to do. */
  private seen: string | null;
  /** The last rejection logged: the same one is not logged twice. */
  private lastLogged: string | null = null;
  private readonly limiter: RateLimiter;
  private readonly listeners: Array<(s: ConfigState) => void> = [];
  private timer: H | null = null;
  private started = false;
  private pending: ReloadTrigger | null = null;

  constructor(
    private readonly d: ConfigSourceDeps<H>,
    initial: InitialConfig,
  ) {
    this.current = { containers: initial.loaded.containers, inFile: initial.loaded.inFile, kept: new Set() };
    this.policy = initial.loaded.policy;
    this.hash = initial.hash;
    this.seen = initial.hash;
    this.loadedAtMs = d.wallMs();
    this.limiter = new RateLimiter(CONFIG_LOG_LIMIT, d.nowMs);
  }

  /** The containers' settings in force. */
  containers(): readonly ContainerConfig[] {
    return this.current.containers;
  }

  /** What /status shows about the configuration. */
  state(): ConfigState {
    return {
      policy: this.policy === null ? null : { ...this.policy },
      hash: this.hash,
      loadedAt: new Date(this.loadedAtMs).toISOString(),
      error: this.error === null ? null : { ...this.error },
      reloads: this.reloads,
      rejected: this.rejected,
    };
  }

  /** Called after every reload, applied or rejected (not for an unchanged file). */
  onChange(fn: (s: ConfigState) => void): void {
    this.listeners.push(fn);
  }

  /** Begin polling (after the agent started); a SIGHUP that came earlier is acted on now. */
  start(): void {
    if (this.started) return;
    this.started = true;
    if (this.d.path !== null && this.d.pollMs > 0) this.timer = this.d.timers.every(() => this.reload('poll'), this.d.pollMs);
    const p = this.pending;
    this.pending = null;
    if (p !== null) this.reload(p);
  }

  stop(): void {
    if (this.timer !== null) this.d.timers.clear(this.timer);
    this.timer = null;
    this.started = false;
  }

  /**
   * Check the file now. A poll acts only on a change; SIGHUP re-reads and applies
   * even an unchanged file (as daemon-reload does), e.g. to retry a container that
   * could not be set up.
   */
  reload(trigger: ReloadTrigger): void {
    if (!this.started) {
      this.pending = trigger === 'signal' ? 'signal' : (this.pending ?? trigger);
      return;
    }
    const path = this.d.path;
    if (path === null) {
      if (trigger === 'signal') this.d.log.info('reload requested: no --config file, nothing to reload');
      return;
    }
    this.d.obs?.checked();
    let text: string;
    try {
      text = this.readOnce(path);
    } catch (e) {
      const message = (e as Error).message;
      // The same unreadable file is counted once, like the same bad content.
      if (trigger === 'poll' && this.seen === `!${message}`) return;
      this.seen = `!${message}`;
      this.reject(trigger, message, '');
      return;
    }
    const hash = sha256(text);
    if (trigger === 'poll' && hash === this.seen) return;
    this.seen = hash;
    let next: LoadedConfig;
    let carried: ReturnType<typeof carryOver>;
    try {
      next = loadConfig(this.d.flags, text, path);
      carried = carryOver(this.current.containers, this.current.inFile, this.current.kept, next);
      this.d.apply(carried.containers);
    } catch (e) {
      this.reject(trigger, (e as Error).message, hash);
      return;
    }
    this.current = { containers: carried.containers, inFile: next.inFile, kept: carried.kept };
    this.policy = next.policy;
    this.hash = hash;
    this.loadedAtMs = this.d.wallMs();
    this.error = null;
    this.lastLogged = null;
    this.reloads++;
    this.d.obs?.reloaded('applied');
    for (const name of carried.gone) {
      this.d.log.warning('container no longer in the config file: it keeps its store and its last settings until the agent restarts', { container: name });
    }
    this.d.log.info('config applied', { file: path, hash, policy: next.policy, trigger });
    this.changed();
  }

  /**
   * The kubelet removes the old version's directory right after the swap: a read
   * that resolved `..data` just before it finds the file gone. Tried again at once,
   * it goes through the new `..data`.
   */
  private readOnce(path: string): string {
    try {
      return this.d.read(path);
    } catch {
      return this.d.read(path);
    }
  }

  private reject(trigger: ReloadTrigger, full: string, hash: string): void {
    const message = full.length > CONFIG_ERROR_MAX ? `${full.slice(0, CONFIG_ERROR_MAX)}... (${full.length} chars)` : full;
    this.rejected++;
    this.error = { message, hash, at: new Date(this.d.wallMs()).toISOString() };
    this.d.obs?.reloaded('rejected');
    const key = `${hash}\0${message}`;
    if (key !== this.lastLogged || trigger === 'signal') {
      this.lastLogged = key;
      const v = this.limiter.take('rejected');
      if (v.allowed) {
        const fields = { file: this.d.path, error: message, hash, trigger, kept: this.hash };
        this.d.log.warning('config file rejected: keeping the last good config', v.suppressedBefore > 0 ? { ...fields, suppressedBefore: v.suppressedBefore } : fields);
      }
    }
    this.changed();
  }

  private changed(): void {
    const s = this.state();
    for (const fn of this.listeners) fn(s);
  }
}

interface ConfigContainers {
  containers: readonly ContainerConfig[];
  /** The last applied file's `containers:` names. */
  inFile: ReadonlySet<string>;
  /** Containers on settings of an earlier file (carryOver). */
  kept: ReadonlySet<string>;
}
