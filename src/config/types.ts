/**
 * Per-container settings: the same fields the FdStorePolicy CRD carries.
 * Documented for users in docs/configuration.md; keep both in step.
 */
import type { NotifyAccess } from '../notify/values.js';

export type Preserve = 'no' | 'restart' | 'yes';

export interface ListenConfig {
  /** LISTEN_FDNAMES entry for this socket. */
  name: string;
  /** tcp | udp | unix-stream | unix-dgram */
  kind: 'tcp' | 'udp' | 'unix-stream' | 'unix-dgram';
  /** "HOST:PORT" / "[v6]:PORT" for tcp/udp, a path (or @abstract) for unix. */
  address: string;
  backlog: number;
  reusePort: boolean;
}

export interface ContainerConfig {
  name: string;
  /** FileDescriptorStoreMax= (F3.1). */
  fileDescriptorStoreMax: number;
  /** NotifyAccess= (N4.1). */
  notifyAccess: NotifyAccess;
  /** WatchdogSec= in seconds; 0 = off (W5.1). */
  watchdogSec: number;
  /** TimeoutStartSec= in seconds; 0 = off (W5.7). */
  timeoutStartSec: number;
  /** FileDescriptorStorePreserve= (F3.21-F3.23). */
  preserve: Preserve;
  /** Send SIGABRT to the main process when the watchdog expires (W5.5). */
  watchdogSignal: boolean;
  /** Release the store when no main process has existed for this long; 0 = never. */
  releaseAfterSec: number;
  /** Sockets the agent binds and passes first on every restore (.socket units). */
  listen: ListenConfig[];
}

/** Defaults, and why (also in docs/configuration.md). */
export const DEFAULTS: Omit<ContainerConfig, 'name'> = {
  // Non-zero unlike systemd's 0: the agent exists to store. 4096 is journald's order of
  // magnitude and fits several containers in the common 1,048,576-fd pod limit.
  fileDescriptorStoreMax: 4096,
  // A container is the unit and has its own socket: any process in it may notify.
  // systemd's implicit `main` would refuse apps started behind `sh -c` wrappers.
  notifyAccess: 'all',
  watchdogSec: 0,
  // Off: an app that never sends READY=1 must not be failed by default.
  timeoutStartSec: 0,
  preserve: 'restart',
  watchdogSignal: false,
  releaseAfterSec: 0,
  listen: [],
};
