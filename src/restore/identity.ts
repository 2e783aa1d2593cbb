/**
 * Is a process (a restore peer) one of container NAME's? Pure: works on the
 * text of /proc/PID/cgroup.
 *
 * Kubernetes gives every container its own cgroup, and a restarted container a
 * new one (the container id is in the path). So "same cgroup as the container's
 * last process" would refuse every restart. The rule instead:
 *   - a cgroup last seen in another container is refused (an app reaching a
 *     neighbour's socket through /proc/PID/root);
 *   - any other cgroup becomes this container's current one.
 * When the peer shares the agent's own cgroup, cgroups do not tell containers
 * apart (a local run, or a process inside the sidecar): accepted, and the caller
 * logs that once.
 */

export interface PeerVerdict {
  ok: boolean;
  reason: string;
  /** Cgroups do not separate containers here (peer in the agent's cgroup). */
  undistinguished: boolean;
}

export function checkPeerCgroup(
  peer: string,
  container: string,
  known: ReadonlyMap<string, string>,
  agentCgroup: string | null,
): PeerVerdict {
  if (agentCgroup !== null && peer === agentCgroup) return { ok: true, reason: 'same cgroup as the agent', undistinguished: true };
  for (const [name, cg] of known) {
    if (name !== container && cg === peer) {
      return { ok: false, reason: `process belongs to container ${name}, not ${container}`, undistinguished: false };
    }
  }
  return { ok: true, reason: 'ok', undistinguished: false };
}
