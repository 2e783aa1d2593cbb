/**
 * What `fdstore ls` shows: per container its state (F3.34 properties plus the
 * run's status), per stored fd what fstat and the socket say about it.
 */
import type { Container } from '../unit/container.js';
import type { FdInfo } from '../native/binding.js';
import { accessMode, devString, fdType, inodeType } from '../store/describe.js';
import type { Entry } from '../store/store.js';
import type { ContainerStatus, FdRow } from './protocol.js';

/** fdInfo of a stored fd, or null when fstat fails (F3.33: such entries are skipped). */
export type FdInfoOf = (fd: number) => FdInfo | null;

export function describeContainers(list: readonly Container[], info: FdInfoOf, nowMs: number): { containers: ContainerStatus[]; fds: FdRow[] } {
  const fds: FdRow[] = [];
  const containers = list.map((c) => {
    for (const e of c.store.list()) {
      const row = describeFd(c.name, e, info(e.fd));
      if (row) fds.push(row);
    }
    return containerStatus(c, nowMs);
  });
  return { containers, fds };
}

function describeFd(container: string, e: Entry, info: FdInfo | null): FdRow | null {
  if (info === null) return null;
  return {
    container,
    fdname: e.name,
    type: fdType(info),
    inodeType: inodeType(info.mode),
    dev: devString(info.dev),
    inode: info.ino,
    rdev: info.rdev === 0 ? null : devString(info.rdev),
    path: info.path,
    address: info.localAddress,
    peer: info.peerAddress,
    flags: accessMode(info.flags),
    poll: e.poll,
  };
}

function containerStatus(c: Container, nowMs: number): ContainerStatus {
  const live = c.run.liveness();
  const ready = c.run.readiness();
  const deadline = c.run.watchdogDeadlineMs;
  return {
    name: c.name,
    count: c.store.size,
    max: c.store.max,
    state: c.run.phase,
    status: c.run.status,
    errno: c.run.errno,
    mainPid: c.run.mainPid,
    notifyAccess: c.notifyAccess(),
    preserve: c.config.preserve,
    watchdogDeadlineInMs: deadline === null ? null : Math.max(0, Math.round(deadline - nowMs)),
    live: live.ok,
    liveReason: live.reason,
    ready: ready.ok,
    readyReason: ready.reason,
    restores: c.restores,
    starts: c.starts,
    listen: c.config.listen.map((l) => ({ name: l.name, kind: l.kind, address: l.address })),
    restoreFailures: c.restoreFailures,
    restoresInFlight: c.restoresInFlight,
    restoresWaiting: c.restoresWaiting,
    deferredCloses: c.store.deferred,
  };
}
