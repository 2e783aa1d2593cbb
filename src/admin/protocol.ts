/**
 * The admin socket's protocol: one JSON request line, one JSON response line.
 * Found from the run dir alone, outside every container directory, under a name
 * no container can have (container names are DNS-1123 labels: no leading dot).
 */
export { adminSocketPath } from '../unit/layout.js';

export type AdminRequest = { op: 'ls'; container?: string } | { op: 'clean'; container: string };

export interface ContainerStatus {
  name: string;
  count: number;
  max: number;
  state: string;
  status: string | null;
  errno: number | null;
  mainPid: number | null;
  notifyAccess: string;
  preserve: string;
  /** Milliseconds until the watchdog deadline; null when no watchdog runs. */
  watchdogDeadlineInMs: number | null;
  live: boolean;
  liveReason: string;
  /** What /readyz/NAME answers, and why ("unknown since agent restart"...). */
  ready: boolean;
  readyReason: string;
  restores: number;
  starts: number;
  /** Restores that ended without their fds; in flight now (0 or 1); waiting for it. */
  restoreFailures?: number;
  restoresInFlight?: number;
  restoresWaiting?: number;
  /** Fds removed during a restore, still open until it ends; they count against max. */
  deferredCloses?: number;
  /** The container's `listen:` sockets (socket activation), bound by the agent and passed first. */
  listen: ListenRow[];
  /** `listen:` sockets held by the running app since the agent restarted (bound again at its next start). */
  listenHeld?: string[];
}

export interface ListenRow {
  /** Its LISTEN_FDNAMES entry. */
  name: string;
  kind: string;
  address: string;
}

export interface FdRow {
  container: string;
  fdname: string;
  type: string;
  inodeType: string;
  dev: string;
  inode: number;
  rdev: string | null;
  path: string;
  address: string;
  peer: string;
  flags: string;
  poll: boolean;
}

export type AdminResponse =
  | { ok: true; containers: ContainerStatus[]; fds: FdRow[] }
  | { ok: true; closed: number }
  | { ok: false; error: string; code: string };

/** Requests and responses are small; a bigger line is hostile or a bug. */
export const ADMIN_REQUEST_MAX_BYTES = 4096;
