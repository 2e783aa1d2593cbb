/**
 * Check at start that every configured store fits in RLIMIT_NOFILE, and raise the
 * soft limit to the hard one (s6-fdholderd does the same check).
 */
import type { ContainerConfig } from '../config/types.js';
import { ConfigError } from '../config/validate.js';

/** fds the agent needs besides stored ones: Node's own, the epoll set, admin and metrics. */
export const BASE_RESERVED_FDS = 128;
/** Per container: notify and restore sockets, a pidfd, an in-flight restore connection. */
export const PER_CONTAINER_RESERVED_FDS = 6;

export function requiredFds(configs: readonly ContainerConfig[]): number {
  let n = BASE_RESERVED_FDS;
  for (const c of configs) n += c.fileDescriptorStoreMax + PER_CONTAINER_RESERVED_FDS + c.listen.length;
  return n;
}

export function checkFdBudget(configs: readonly ContainerConfig[], hard: number): void {
  const need = requiredFds(configs);
  if (hard >= 0 && need > hard) {
    const stores = configs.map((c) => `${c.name}=${c.fileDescriptorStoreMax}`).join(', ');
    throw new ConfigError(
      `the configured stores need ${need} fds (fileDescriptorStoreMax ${stores}, plus ${need - configs.reduce((s, c) => s + c.fileDescriptorStoreMax, 0)} reserved) ` +
        `but RLIMIT_NOFILE allows ${hard}: lower fileDescriptorStoreMax or raise the pod's nofile limit`,
    );
  }
}
