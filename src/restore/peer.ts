/**
 * Restore-socket policy: who may fetch a container's fds (identity.ts decides
 * from the peer's mounts), and when a launcher may start a run (never while the
 * current main process lives).
 */
import { realpathSync } from 'node:fs';
import type { Accepted } from '../native/binding.js';
import type { Procs } from '../native/procs.js';
import type { Logger } from '../log/log.js';
import type { Container } from '../unit/container.js';
import { checkPeerMounts, parseMountinfo, peerMounts, runDirSource, type RunDirSource } from './identity.js';

export interface PeerDeps {
  procs: Procs;
  log: Logger;
  runDir: string;
  /** Names of the configured containers (the directories of DIR). */
  names(): readonly string[];
}

export class PeerCheck {
  private source: RunDirSource | null | undefined;

  constructor(private readonly d: PeerDeps) {}

  /** Is the peer one of this container's processes? null = yes, else why not. */
  check(c: Container, peer: Accepted): string | null {
    if (peer.pid === 0) {
      this.d.log.once(`restore-pid0:${c.name}`, 'warning', 'restore peer pid not visible (no shared PID namespace): trusting the socket', { container: c.name });
      return null;
    }
    const src = this.runDirSource();
    if (src === null) {
      this.d.log.once('restore-no-source', 'warning', 'cannot locate the run dir in the agent\'s mounts: restore peers are told apart by socket only', {});
      return null;
    }
    const text = this.d.procs.mountinfo(peer.pid);
    // A pidfd pins the peer: if it is reaped, the pid may name someone else now.
    if (text === null || (peer.pidfd >= 0 && this.d.procs.reaped(peer.pidfd))) return 'peer process is gone';
    const v = checkPeerMounts(peerMounts(parseMountinfo(text), src, this.d.names()), c.name);
    if (!v.ok) return v.reason;
    if (v.undistinguished) {
      this.d.log.once('restore-undistinguished', 'info', 'restore peers see the whole run dir (no subPath mounts): containers are told apart by socket only', {});
    }
    return null;
  }

  private runDirSource(): RunDirSource | null {
    if (this.source !== undefined) return this.source;
    const own = this.d.procs.mountinfo('self');
    let real: string;
    try {
      real = realpathSync(this.d.runDir);
    } catch {
      return null; // not there yet: try again next time
    }
    this.source = own === null ? null : runDirSource(parseMountinfo(own), real);
    return this.source;
  }
}

/** What the agent knows of the current run's main process when a launcher connects. */
export interface CurrentMain {
  alive: boolean;
  /** Its pid in the agent's PID namespace, null when not visible. */
  pid: number | null;
}

/**
 * A launcher starts a new run only when the current one has no live main
 * process: `kubectl exec ... fdstore-exec -- env` while the app serves must not
 * unready it, unwatch it, or (preserve: no) release its store when it exits.
 * The main process itself may (it re-execs through the launcher: a new run, same
 * pid). Refused, the launcher exits 111 with this text (docs/protocol.md).
 */
export function launcherRefusal(main: CurrentMain, peerPid: number): string | null {
  if (!main.alive) return null;
  // The main process itself, exec'ing the launcher again (an in-place re-exec that
  // wants its fds back): it is the run's own process, not a takeover.
  if (main.pid !== null && peerPid > 0 && peerPid === main.pid) return null;
  const who = main.pid === null ? 'the main process' : `the main process ${main.pid}`;
  return `${who} of the current run is alive: a new run starts only after it exited`;
}
