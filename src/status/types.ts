/**
 * What the agent tells the operator about its pod: GET /status on the agent's HTTP
 * port (long-poll: `?after=GENERATION&wait=SECONDS`). Exactly what the FdStore
 * object shows, and nothing more: no fd paths, no socket addresses, no pids of other
 * containers' processes. STATUS= text is cut to STATUS_TEXT_MAX.
 *
 * This is a wire format between two versions of fdstore (an operator may be newer or
 * older than the agents it reads): fields are only ever added; `schema` changes when
 * a field changes meaning, and a reader refuses a schema it does not know.
 */
import type { RunPhase } from '../unit/run.js';

/** Bumped only when a field changes meaning or goes away. */
export const STATUS_SCHEMA = 'fdstore.dev/agent-status/v1';

/** STATUS= text kept in the status (systemd shows a line of it in `systemctl status`). */
export const STATUS_TEXT_MAX = 256;
/** Fd groups (name, type) per container: the largest groups, the rest counted in fdGroupsOmitted. */
export const STATUS_FD_GROUPS_MAX = 16;
/** Longest a long-poll waits before answering with an unchanged status. */
export const STATUS_WAIT_MAX_SEC = 30;
/**
 * Long-polls waiting at once. A waiting request cannot be evicted by the HTTP
 * connection cap, so without this bound 64 hanging GETs from the pod network would
 * shut the kubelet's probes out. One operator leader needs one; more are answered at
 * once (no wait).
 */
export const STATUS_WAITERS_MAX = 4;

export interface AgentStatus {
  schema: typeof STATUS_SCHEMA;
  /**
   * Grows by one on every change below (except the watchdog deadline, which moves
   * on every ping): the long-poll cursor. Starts at 1 in each agent process.
   */
  generation: number;
  agent: AgentInfo;
  config: ConfigState;
  containers: ContainerState[];
}

export interface AgentInfo {
  /** fdstore's package version. */
  version: string;
  /** Wall-clock start of this agent process, RFC 3339. */
  startedAt: string;
  /**
   * Random per agent process: a new value means the agent restarted, even when the
   * clock or startedAt cannot tell (the operator's StoreLost check).
   */
  instance: string;
  /** The keeper (docs/keeper.md) as this agent uses it; absent when the agent runs without one. */
  keeper?: KeeperState;
}

/** What the agent knows of its keeper. */
export interface KeeperState {
  /** The agent holds a connection to the keeper now (else it retries). */
  connected: boolean;
  /** Agents that served this pod with this keeper before this one (0 on a first start). */
  agentRestarts: number;
  /** Fds and listen sockets this agent took over from the keeper at start. */
  adoptedFds: number;
  /** An earlier agent served this pod and the keeper held nothing: its stores were lost with it. */
  storeLost: boolean;
  /** Times the keeper went away and was seeded again (a keeper restart). */
  reseeds: number;
  /** Fds stored but not mirrored because the keeper was full (they do not survive an agent restart). */
  unmirrored: number;
}

export interface ConfigState {
  /** The policy the applied config file came from (the operator writes it into the file); null without one. */
  policy: { name: string; generation: number } | null;
  /** sha256 (hex) of the config file text in use; null when the agent runs from flags only. */
  hash: string | null;
  /** When the config in use was loaded, RFC 3339. */
  loadedAt: string;
  /** The last file that could not be used (the agent kept the config above), else null. */
  error: { message: string; hash: string; at: string } | null;
  /** Reloads that applied a new file, and files refused, since the agent started. */
  reloads: number;
  rejected: number;
}

export interface ContainerState {
  name: string;
  /** The current run's phase (systemd's sub-state). */
  state: RunPhase;
  /** What /readyz/NAME answers, and why. */
  ready: boolean;
  readyReason: string;
  /** What /livez/NAME answers, and why. */
  live: boolean;
  liveReason: string;
  /** Fds in the store now, and fileDescriptorStoreMax. */
  stored: number;
  max: number;
  /** Stored fds counted by FDNAME and type, largest groups first (ties by name, then type). */
  fdGroups: FdGroup[];
  /** Groups left out past STATUS_FD_GROUPS_MAX (their fds: stored minus the counts in fdGroups). */
  fdGroupsOmitted: number;
  /** Restores served (LISTEN_FDS handed to a launcher), restores that failed, starts seen. */
  restores: number;
  restoreFailures: number;
  starts: number;
  /** The last restore: when, and how many fds it passed (listen sockets included). */
  lastRestore: { at: string; fds: number } | null;
  /** Fds closed because the store was full (F3.8), since the agent started. */
  overLimit: number;
  /** Last STATUS= of this run, cut to STATUS_TEXT_MAX; ERRNO=. */
  status: string | null;
  errno: number | null;
  watchdog: WatchdogState;
  /** The `listen:` sockets the agent holds for this container (names and kinds, no addresses). */
  listen: { name: string; kind: string }[];
}

export interface FdGroup {
  name: string;
  /** tcp_listen, tcp, udp, unix_listen, unix, memfd, pipe, file, other (store/describe.ts FdType, as in fdstore ls). */
  type: string;
  count: number;
}

export interface WatchdogState {
  /** The effective watchdog timeout in seconds (WATCHDOG_USEC= overrides count); 0 = off. */
  sec: number;
  /** When the watchdog fires unless pinged, RFC 3339; null when off or not armed yet. */
  deadline: string | null;
  /** Watchdog expiries and WATCHDOG=trigger, and start timeouts, since the agent started. */
  failures: number;
  startTimeouts: number;
}
