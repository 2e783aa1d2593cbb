/**
 * Which start of a container a process belongs to, and when a datagram shows
 * that the container started again without the launcher (issue 7 item 8). Pure.
 *
 * Container runtimes name a container's cgroup after its id, and a restarted
 * container gets a new id (so a new cgroup):
 *   cgroup v2, containerd (systemd driver)  0::/kubepods.slice/.../kubepods-burstable-pod<uid>.slice/cri-containerd-<id>.scope
 *   cgroup v2, cgroupfs driver              0::/kubepods/burstable/pod<uid>/<id>
 *   cgroup v1 (one line per hierarchy)      4:memory:/kubepods/burstable/pod<uid>/<id>
 *   CRI-O, docker, podman                   crio-<id>.scope, docker-<id>.scope, libpod-<id>.scope
 *   (podman pods: machine-libpod_pod_<podid>.slice/libpod-<id>.scope)
 *   a private cgroup namespace shows siblings as 0::/../<id>, its own as 0::/
 * <id> is 64 hex digits; the container's is the last one on the path (sub-cgroups
 * a process makes below its container keep it). No id (a local run): null.
 */
import type { Run } from './run.js';

const ID = /[0-9a-f]{64}/g;

export function containerInstance(cgroupText: string | null): string | null {
  if (cgroupText === null) return null;
  let any: string | null = null;
  for (const line of cgroupText.split('\n')) {
    const path = line.split(':').slice(2).join(':');
    const ids = path.match(ID);
    if (!ids) continue;
    const id = ids[ids.length - 1]!;
    if (line.startsWith('0::')) return id; // the unified hierarchy, when in use
    any ??= id;
  }
  return any;
}

export interface SenderFacts {
  /** Credential pid; 0 when not visible (no shared PID namespace). */
  pid: number;
  /** Alive and not a zombie. */
  alive: boolean;
  /** containerInstance() of its cgroup. */
  instance: string | null;
}

/**
 * A datagram starts a new run (systemd: a new main process) when it comes from a
 * live process that is not the run's main pid and:
 *   (a) the run's known main process exited (launcher- or MAINPID=-watched), or
 *   (b) it is in another start of the container than the run (a new container
 *       id), and the run's main process, if known, is not alive.
 * Datagrams of pid 0 never do: nothing tells which start they come from.
 * `agentInstance` is the agent's own container: its processes never count.
 */
export function startsNewRun(run: Run, s: SenderFacts, mainAlive: boolean, agentInstance: string | null): boolean {
  if (s.pid === 0 || !s.alive || s.pid === run.mainPid) return false;
  if (run.phase === 'exited') return true;
  if (mainAlive || s.instance === null || s.instance === agentInstance) return false;
  return run.instance !== null && s.instance !== run.instance;
}
