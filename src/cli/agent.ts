/**
 * `fdstore agent`: the composition root. Parse flags, build every object, wire,
 * start. No protocol logic here.
 */
import { parseArgs } from 'node:util';
import { Agent } from '../agent/agent.js';
import { fanout, logObserver } from '../unit/observer.js';
import { realProcs } from '../native/procs.js';
import { checkFdBudget, requiredFds } from '../agent/limits.js';
import type { FlagSettings } from '../config/load.js';
import { readConfigFile } from '../config/file.js';
import { CONFIG_POLL_MIN_MS, CONFIG_POLL_MS, ConfigSource, loadInitial, type InitialConfig } from '../config/reload.js';
import { ConfigMetrics } from '../metrics/config.js';
import { ConfigError, intIn, notifyAccess, SECONDS_MAX, secondsIn } from '../config/validate.js';
import type { Preserve } from '../config/types.js';
import { createLogger, isLevel, type Level } from '../log/log.js';
import type { DedupeMethod } from '../native/binding.js';
import * as sys from '../native/sys.js';
import { Registry } from 'prom-client';
import { Watchdog, rescheduleObserver } from '../agent/watchdog.js';
import { DoneWatcher } from '../agent/done.js';
import { DEFAULT_LISTEN, formatAddress, HttpServer, parseListen, type HttpDeps, type ListenAddress } from '../http/server.js';
import { Metrics } from '../metrics/metrics.js';
import { packageVersion } from '../metrics/version.js';
import { fdType, inodeType, type FdType } from '../store/describe.js';
import type { Entry } from '../store/store.js';
import { agentInfo, StatusService } from '../status/service.js';
import { FdTypeCache } from '../status/fdtypes.js';
import { AGENT_HELP } from './usage.js';

const EXIT_USAGE = 2;
const EXIT_FAIL = 1;
/** Well inside a pod's default 30 s terminationGracePeriodSeconds. */
export const SHUTDOWN_DEADLINE_MS = 10_000;

const DEDUPE: Record<string, DedupeMethod> = { auto: 0, 'dupfd-query': 1, kcmp: 2, fstat: 3 };

export async function runAgent(argv: string[]): Promise<number> {
  const startedAt = new Date();
  let values;
  try {
    values = parseArgs({
      args: argv,
      strict: true,
      options: {
        'run-dir': { type: 'string' },
        container: { type: 'string', multiple: true },
        config: { type: 'string' },
        'config-poll': { type: 'string' },
        'fd-store-max': { type: 'string' },
        'notify-access': { type: 'string' },
        'watchdog-sec': { type: 'string' },
        'timeout-start-sec': { type: 'string' },
        preserve: { type: 'string' },
        http: { type: 'string' },
        // Deprecated alias of --http: "listen" read as the config file's `listen:`
        // sockets (socket activation) to systemd users.
        listen: { type: 'string' },
        dedupe: { type: 'string' },
        'exit-when-done': { type: 'string' },
        keeper: { type: 'string' },
        'log-level': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'V' },
      },
    }).values;
  } catch (e) {
    process.stderr.write(`fdstore agent: ${(e as Error).message}\n\n${AGENT_HELP}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    process.stdout.write(AGENT_HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`fdstore ${packageVersion()}\n`);
    return 0;
  }
  // Usage errors (flags, the config file) are for the person or manifest that
  // started the agent: one plain line, not a JSON log line.
  let settings: Settings;
  try {
    settings = settingsOf(values);
  } catch (e) {
    if ((e as { code?: string }).code !== 'ECONFIG') throw e;
    return usage((e as Error).message);
  }
  const { level, dedupe, initial, listen, runDir, exitWhenDoneMs, keeper } = settings;
  const configs = initial.loaded.containers;
  // A log reader that went away (EPIPE) must not take the stores down with an
  // unhandled 'error' event: the agent keeps serving without its log.
  process.stderr.on('error', () => {});
  const log = createLogger(process.stderr, level);
  try {
    if (values.listen !== undefined) log.warning('--listen is deprecated: use --http (same value)', { listen: values.listen });

    const { soft, hard } = sys.getNofile();
    checkFdBudget(configs, hard);
    if (hard !== soft) sys.setNofile(hard);
    // Grow the fd table once now rather than ~10 times, each behind an RCU grace
    // period, while a burst of FDSTORE=1 messages is being received.
    sys.reserveFds(Math.min(requiredFds(configs), hard));

    const nowMs = (): number => performance.now();
    const fdTypes = new FdTypeCache(fdTypeOf, () => new Promise((r) => setImmediate(r)));
    const status = new StatusService({
      containers: () => agent.containers.values(),
      container: (name) => agent.containers.get(name),
      listening: (name) => agent.listening(name),
      // The live config source below (a reload shows in /status at once).
      config: { state: () => source.state() },
      agent: agentInfo(packageVersion(), startedAt),
      types: fdTypes,
      nowMs,
      wallMs: Date.now,
      timers: { set: (fn, ms) => setTimeout(fn, ms).unref(), clear: (t) => clearTimeout(t) },
      keeper: () => {
        const k = agent.keeperInfo;
        return k && {
          connected: k.connected(),
          agentRestarts: k.agentRestarts,
          adoptedFds: k.adoptedFds,
          storeLost: k.storeLost,
          reseeds: k.reseeds(),
          unmirrored: k.unmirrored(),
        };
      },
    });
    const registry = new Registry();
    const metrics = new Metrics({
      registry,
      names: configs.map((c) => c.name),
      containers: () => agent.containers.values(),
      typeOf: fdTypes.lookup,
      wallMs: Date.now,
      version: packageVersion(),
      processFds: () => ({ open: sys.countFds(), max: nofileMax(sys.getNofile().soft) }),
      statusWaiters: () => status.waiting,
      ...(keeper !== null ? { keeper: () => agent.keeperInfo } : {}),
    });
    const source: ConfigSource = new ConfigSource(
      {
        path: settings.configFile,
        flags: settings.flags,
        read: readConfigFile,
        apply: (next) => agent.reconfigure(next),
        log,
        wallMs: Date.now,
        nowMs,
        pollMs: settings.pollMs,
        timers: { every: (fn, ms) => setInterval(fn, ms).unref(), clear: (t) => clearInterval(t) },
        obs: new ConfigMetrics(registry, () => source.state()),
      },
      initial,
    );
    // Containers a reload added get their series (names come from the config only).
    source.onChange(() => {
      for (const name of agent.containers.keys()) metrics.addContainer(name);
    });
    // A new config is a status change: the operator's long-poll learns it at once.
    source.onChange(() => status.bump());
    const done = exitWhenDoneMs === null ? null : new DoneWatcher(configs.map((c) => c.name), exitWhenDoneMs, { set: (fn, ms) => setTimeout(fn, ms), clear: (t) => clearTimeout(t as NodeJS.Timeout) });
    const obs = fanout(
      ...(done ? [done.observer()] : []),
      logObserver(log, { suppressed: metrics.logSuppressed }),
      metrics,
      rescheduleObserver({ reschedule: () => watchdog.reschedule() }),
      status.observer,
    );
    const watchdog = new Watchdog({
      containers: () => agent.containers.values(),
      obs,
      log,
      nowMs,
      timers: { set: (fn, ms) => setTimeout(fn, ms).unref(), clear: (t) => clearTimeout(t) },
      kill: (pid, signal) => process.kill(pid, signal),
    });
    const agent = new Agent({
      kernel: sys,
      log,
      obs,
      procs: realProcs,
      nowMs,
      runDir,
      configs,
      dedupe,
      uid: process.getuid?.() ?? 0,
      ...(keeper !== null ? { keeper: { path: keeper, changed: () => status.bump() } } : {}),
      checkBudget: (all) => {
        checkFdBudget(all, hard);
        try {
          sys.reserveFds(Math.min(requiredFds(all), hard));
        } catch {
          // Only an optimisation (see above): the table grows on demand instead.
        }
      },
    });
    // Handlers before the first socket: a SIGTERM that races start-up must not kill us
    // with the default action (exit by signal, nothing closed).
    // --exit-when-done: a Job's apps have all finished; ends the agent as SIGTERM would.
    const signalled = done ? Promise.race([waitForSignal(), done.done.then(() => 'apps done' as const)]) : waitForSignal();
    // SIGHUP is daemon-reload (and must not end the agent, its default action).
    process.on('SIGHUP', () => source.reload('signal'));
    agent.start();
    status.seed();
    const http = listen === null ? null : await startHttp(listen, agent, { registry, log, status, statusRequest: metrics.statusRequest });
    watchdog.reschedule();
    source.start();
    log.info('agent ready', {
      runDir,
      containers: configs.map((c) => ({ name: c.name, fileDescriptorStoreMax: c.fileDescriptorStoreMax, notifyAccess: c.notifyAccess })),
      nofile: hard,
    });
    return await untilSignal(signalled, agent, log, () => {
      source.stop();
      watchdog.stop();
      void http?.close();
    });
  } catch (e) {
    const err = e as Error & { code?: string };
    log.error('agent failed to start', { error: err.message, code: err.code });
    // A run dir the agent refuses (untrusted, locked by another agent, cannot be made) is
    // a deployment problem like a bad flag: retrying the same start cannot succeed.
    return err.code === 'ECONFIG' || err.code === 'ERUNDIR' ? EXIT_USAGE : EXIT_FAIL;
  }
}

/** After agent.start(): a busy port stops the agent and fails the start. */
async function startHttp(at: ListenAddress, agent: Agent, deps: Pick<HttpDeps, 'registry' | 'log' | 'status' | 'statusRequest'>): Promise<HttpServer> {
  const { log } = deps;
  const http = new HttpServer({
    ...deps,
    // Serving at all means agent.start() bound every socket; SIGTERM closes this server.
    health: () => agent.health(),
    run: (name) => agent.containers.get(name)?.run,
  });
  try {
    const bound = await http.start(at);
    log.info('http listening', { address: formatAddress(bound) });
    return http;
  } catch (e) {
    agent.stop('start failed');
    throw e;
  }
}

function waitForSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
}

async function untilSignal(
  signalled: Promise<NodeJS.Signals | 'apps done'>,
  agent: Agent,
  log: ReturnType<typeof createLogger>,
  beforeStop: () => void,
): Promise<number> {
  const sig = await signalled;
  log.info('shutting down', sig === 'apps done' ? { reason: 'every container has exited (--exit-when-done)' } : { signal: sig });
  // A hard deadline in case a close blocks: exit non-zero rather than hang past the grace period.
  setTimeout(() => {
    log.error('shutdown deadline passed', { deadlineMs: SHUTDOWN_DEADLINE_MS });
    process.exit(EXIT_FAIL);
  }, SHUTDOWN_DEADLINE_MS).unref();
  beforeStop();
  agent.stop(sig === 'apps done' ? 'apps done' : `signal ${sig}`);
  log.info('stopped');
  return 0;
}

type AgentValues = Record<string, string | string[] | boolean | undefined>;

interface Settings {
  level: Level;
  dedupe: DedupeMethod;
  flags: FlagSettings;
  configFile: string | null;
  /** --exit-when-done: exit this long after every container's main process has exited; null: never. */
  exitWhenDoneMs: number | null;
  /** The config at start, from the flags and the file (a bad file fails the start). */
  initial: InitialConfig;
  pollMs: number;
  listen: ListenAddress | null;
  runDir: string;
  /** The keeper's socket, null without one. */
  keeper: string | null;
}

/** Everything the flags and the config file say; ConfigError when they are wrong. */
function settingsOf(values: AgentValues): Settings {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const http = str('http');
  const oldListen = str('listen');
  if (http !== undefined && oldListen !== undefined) throw new ConfigError('--listen is the old name of --http: give only --http');
  const level = str('log-level') ?? 'info';
  if (!isLevel(level)) throw new ConfigError('--log-level must be debug, info, warning or error');
  const runDir = str('run-dir');
  if (!runDir) throw new ConfigError('--run-dir is required');
  const dedupe = DEDUPE[str('dedupe') ?? 'auto'];
  if (dedupe === undefined) throw new ConfigError('--dedupe must be auto, dupfd-query, kcmp or fstat');
  const configFile = str('config') ?? null;
  const poll = str('config-poll');
  if (poll !== undefined && configFile === null) throw new ConfigError('--config-poll needs --config FILE');
  const pollMs = poll === undefined ? CONFIG_POLL_MS : seconds(poll, '--config-poll') * 1000;
  if (pollMs > 0 && pollMs < CONFIG_POLL_MIN_MS) throw new ConfigError(`--config-poll: at least ${CONFIG_POLL_MIN_MS}ms, or 0 (SIGHUP only)`);
  const flags = flagSettings(values);
  const initial = loadInitial(configFile, flags, readConfigFile);
  const listen = parseListen(http ?? oldListen ?? DEFAULT_LISTEN);
  const exitWhen = str('exit-when-done');
  const exitWhenDoneMs = exitWhen === undefined ? null : seconds(exitWhen, '--exit-when-done') * 1000;
  const keeper = str('keeper') ?? null;
  if (keeper === '') throw new ConfigError('--keeper needs the path of the keeper socket');
  return { level, dedupe, flags, configFile, initial, pollMs, listen, runDir, exitWhenDoneMs, keeper };
}

function flagSettings(values: AgentValues): FlagSettings {
  const str = (k: string): string | undefined => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const flags: FlagSettings = { containers: (values.container as string[] | undefined) ?? [], defaults: {} };
  const max = str('fd-store-max');
  if (max !== undefined) flags.defaults.fileDescriptorStoreMax = intIn(max, 0, 1 << 30, '--fd-store-max');
  const na = str('notify-access');
  if (na !== undefined) flags.defaults.notifyAccess = notifyAccess(na, '--notify-access');
  const wd = str('watchdog-sec');
  if (wd !== undefined) flags.defaults.watchdogSec = seconds(wd, '--watchdog-sec');
  const ts = str('timeout-start-sec');
  if (ts !== undefined) flags.defaults.timeoutStartSec = seconds(ts, '--timeout-start-sec');
  const p = str('preserve');
  if (p !== undefined) {
    if (!['no', 'restart', 'yes'].includes(p)) throw new ConfigError('--preserve must be no, restart or yes');
    flags.defaults.preserve = p as Preserve;
  }
  return flags;
}

/** Seconds or a systemd time span ("30", "5s", "1min 30s"), as in the config file. */
function seconds(v: string, where: string): number {
  return secondsIn(v, SECONDS_MAX, where);
}

function usage(msg: string): number {
  process.stderr.write(`fdstore agent: ${msg}\n`);
  return EXIT_USAGE;
}

/** An fd's type for metrics and /status (cached per entry by FdTypeCache); null when fdInfo fails. */
function fdTypeOf(e: Entry): FdType | null {
  // Pipes, devices and the like are told by the mode fstat gave when the fd was stored.
  const inode = inodeType(e.mode);
  if (inode !== 'sock' && inode !== 'reg') return fdType({ mode: e.mode, flags: 0, path: '', family: 0, sockType: 0, listening: false });
  try {
    return fdType(sys.fdInfo(e.fd));
  } catch {
    return null;
  }
}

/** RLIM_INFINITY comes back as -1. */
function nofileMax(soft: number): number {
  return soft < 0 ? Infinity : soft;
}
