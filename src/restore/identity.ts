/**
 * Which container's directory a process has mounted: the identity of a restore
 * peer. Pure: works on the text of /proc/PID/mountinfo.
 *
 * Each app container mounts only its own DIR/NAME (a subPath mount the kubelet
 * makes before the container starts); changing one's mounts needs CAP_SYS_ADMIN.
 * So a process that mounts DIR/A but connected to DIR/B/restore reached it
 * through another process's root (/proc/PID/root): it is A's, never B's. Nothing
 * is learned from earlier peers: the first process to connect cannot claim a
 * container, and MAINPID= cannot seed anything.
 *
 * Cgroups cannot do this: a container's cgroup path carries its runtime id
 * (`.../pod<UID>/<id>`, `cri-containerd-<id>.scope`, `libpod-<id>.scope`), and
 * nothing in the pod maps that id to a container name without the API server.
 *
 * A mount is compared by its source: the device and the path inside that file
 * system (mountinfo's 4th field), which is the same in every mount namespace,
 * however the kubelet's bind mounts (volume-subpaths) reached it.
 */
import { posix } from 'node:path';

export interface Mount {
  /** major:minor of the file system. */
  dev: string;
  /** Path of the mounted directory inside that file system. */
  root: string;
  /** Where it is mounted, in the process's own view. */
  mountPoint: string;
}

/** The run dir as a mount source: its device and its path inside that file system. */
export interface RunDirSource {
  dev: string;
  root: string;
}

/** What a process's mounts show of the run dir. */
export interface PeerMounts {
  /** It mounts the run dir itself or an ancestor (the agent's container, a host process). */
  whole: boolean;
  /** Configured containers whose DIR/NAME (or something inside it) it mounts. */
  containers: string[];
}

export type PeerVerdict = { ok: true; undistinguished: boolean } | { ok: false; reason: string };

/** mountinfo escapes space, tab, newline and backslash as \ooo. */
function unescape(s: string): string {
  return s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
}

export function parseMountinfo(text: string): Mount[] {
  const out: Mount[] = [];
  for (const line of text.split('\n')) {
    // id parent major:minor root mount-point options [optional...] - fstype source super-options
    const f = line.split(' ');
    if (f.length < 5) continue;
    out.push({ dev: f[2]!, root: unescape(f[3]!), mountPoint: unescape(f[4]!) });
  }
  return out;
}

function within(path: string, dir: string): boolean {
  return dir === '/' || path === dir || path.startsWith(dir + '/');
}

/**
 * Where the run dir (a real path, no symlinks) comes from: the mount with the
 * longest mount point containing it. Later mounts on the same point win.
 */
export function runDirSource(own: readonly Mount[], runDirReal: string): RunDirSource | null {
  let best: Mount | null = null;
  for (const m of own) {
    if (within(runDirReal, m.mountPoint) && (best === null || m.mountPoint.length >= best.mountPoint.length)) best = m;
  }
  if (best === null) return null;
  return { dev: best.dev, root: posix.join(best.root, posix.relative(best.mountPoint, runDirReal)) };
}

export function peerMounts(peer: readonly Mount[], src: RunDirSource, names: readonly string[]): PeerMounts {
  let whole = false;
  const containers = new Set<string>();
  for (const m of peer) {
    if (m.dev !== src.dev) continue;
    if (within(src.root, m.root)) whole = true;
    else if (within(m.root, src.root)) {
      const name = posix.relative(src.root, m.root).split('/')[0]!;
      if (names.includes(name)) containers.add(name);
    }
  }
  return { whole, containers: [...containers].sort() };
}

/**
 * A peer of DIR/NAME/restore is container NAME's when it mounts DIR/NAME. One
 * that mounts other containers' directories only is theirs. One that sees the
 * whole run dir cannot be told apart (a local run, a process in the agent's own
 * container): the socket decides, and the caller says so once. One that mounts
 * nothing of the run dir reached the socket through another process's root.
 */
export function checkPeerMounts(peer: PeerMounts, container: string): PeerVerdict {
  if (peer.containers.includes(container)) return { ok: true, undistinguished: false };
  if (peer.containers.length > 0) {
    return { ok: false, reason: `process belongs to container ${peer.containers.join(', ')} (it mounts their directory), not ${container}` };
  }
  if (peer.whole) return { ok: true, undistinguished: true };
  return { ok: false, reason: `process does not mount the run dir: it reached ${container}'s socket through another process's root` };
}
