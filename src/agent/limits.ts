/**
 * The agent's fd budget, checked once at start against RLIMIT_NOFILE (and the soft
 * limit raised to the hard one, as s6-fdholderd does): every store at its maximum,
 * plus what each other consumer of fds may hold at most. Every consumer that a
 * peer can grow is capped by one of the constants below, so a full store, a full
 * HTTP server and a 253-fd datagram in reception fit at the same time: nothing
 * one peer does costs the others their fds.
 *
 * Also checked: each store must be restorable by the launcher (fdstore-exec)
 * under the same limit, since the app's container usually gets the same nofile
 * limit from the runtime as the agent's. The launcher re-checks under its own.
 */
import type { ContainerConfig } from '../config/types.js';
import { ConfigError } from '../config/validate.js';
import { FDS_PER_MSG, LAUNCHER_RESERVED_FDS } from '../native/proto.js';
import { HTTP_MAX_CONNECTIONS } from '../http/server.js';
import { QUEUE_MAX } from '../restore/deadlines.js';

/** fds the agent needs besides stored ones: Node's own, the epoll set, admin and its clients. */
export const BASE_RESERVED_FDS = 128;
/** A container's own sockets: DIR/NAME/notify and DIR/NAME/restore. */
export const CONTAINER_SOCKET_FDS = 2;
/** The pidfd that watches the current run's main process. */
export const RUN_WATCH_FDS = 1;
/** One restore connection: its socket and the pidfd that pins its peer (restore/server.ts). */
export const RESTORE_CONNECTION_FDS = 2;
/**
 * Restore connections one container can make the agent hold at once: the transfer in
 * flight, QUEUE_MAX waiting for it, and one accepted only to be refused (a refusal
 * closes it in the same turn, so there is never more than one).
 */
export const RESTORE_CONNECTIONS_MAX = 1 + QUEUE_MAX + 1;
/** Per container, besides its store and its listen: sockets. */
export const PER_CONTAINER_RESERVED_FDS = CONTAINER_SOCKET_FDS + RUN_WATCH_FDS + RESTORE_CONNECTIONS_MAX * RESTORE_CONNECTION_FDS;
/** The HTTP server's connection cap, counted whether or not --listen is on. */
export { HTTP_MAX_CONNECTIONS };
/**
 * One datagram in reception: its fds exist in the agent's table before the store
 * decides which to keep. With room for a whole one (the kernel's SCM_MAX_FD), a
 * message that only partly fits the store is stored up to the limit and the rest
 * counted over_limit (F3.8), instead of the kernel truncating it (MSG_CTRUNC, the
 * whole datagram dropped, D1.15). The event loop handles one datagram at a time.
 */
export const NOTIFY_RECEIVE_RESERVED_FDS = FDS_PER_MSG;
/** What the launcher needs besides the N fds it restores (proto.h, agent/launcher/restore.c). */
export { LAUNCHER_RESERVED_FDS };

export function requiredFds(configs: readonly ContainerConfig[]): number {
  let n = BASE_RESERVED_FDS + HTTP_MAX_CONNECTIONS + NOTIFY_RECEIVE_RESERVED_FDS;
  for (const c of configs) n += c.fileDescriptorStoreMax + PER_CONTAINER_RESERVED_FDS + c.listen.length;
  return n;
}

/** fds the launcher needs to restore a full store of this container (listen: sockets come first). */
export function launcherFds(c: ContainerConfig): number {
  return c.fileDescriptorStoreMax + c.listen.length + LAUNCHER_RESERVED_FDS;
}

/** The largest fileDescriptorStoreMax one container may have under this hard limit (alone in the pod, no listen:). */
export function largestStoreMax(hard: number): number {
  return Math.max(0, hard - (BASE_RESERVED_FDS + HTTP_MAX_CONNECTIONS + NOTIFY_RECEIVE_RESERVED_FDS + PER_CONTAINER_RESERVED_FDS));
}

export function checkFdBudget(configs: readonly ContainerConfig[], hard: number): void {
  if (hard < 0) return; // RLIM_INFINITY
  const need = requiredFds(configs);
  if (need > hard) {
    const stores = configs.map((c) => `${c.name}=${c.fileDescriptorStoreMax}`).join(', ');
    throw new ConfigError(
      `the configured stores need ${need} fds (fileDescriptorStoreMax ${stores}, plus ${need - configs.reduce((s, c) => s + c.fileDescriptorStoreMax, 0)} reserved) ` +
        `but RLIMIT_NOFILE allows ${hard}: lower fileDescriptorStoreMax or raise the pod's nofile limit`,
    );
  }
  for (const c of configs) {
    const launcher = launcherFds(c);
    if (launcher > hard) {
      throw new ConfigError(
        `container ${c.name}: restoring ${c.fileDescriptorStoreMax + c.listen.length} fds needs RLIMIT_NOFILE >= ${launcher} in the app's launcher ` +
          `but the limit is ${hard}: lower fileDescriptorStoreMax or raise the pod's nofile limit`,
      );
    }
  }
}
