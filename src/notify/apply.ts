/**
 * Apply one valid notify message to a container, in systemd's order (spec §2):
 * authorization -> MAINPID -> STOPPING/READY/RELOADING -> STATUS -> NOTIFYACCESS
 * -> ERRNO -> EXTEND_TIMEOUT_USEC -> WATCHDOG= -> WATCHDOG_USEC= -> FDSTOREREMOVE
 * or else FDSTORE. Takes ownership of the message's fds: each one is stored or
 * closed before this returns (D1.28).
 */
import type { NotifyMessage } from './parse.js';
import { decodeUtf8 } from './parse.js';
import { isValidFdName, parseErrno, parseNotifyAccess, parsePid, parseUsec } from './values.js';
import type { DropReason, FdStat } from '../store/store.js';
import type { Container } from '../unit/container.js';
import type { Observer } from '../unit/observer.js';
import type { Procs } from '../native/procs.js';
import { containerInstance, startsNewRun } from '../unit/instance.js';
import { CHECKED_SENDERS_MAX } from '../unit/run.js';

export interface Sender {
  /** Credential pid as seen in our PID namespace; 0 when the sender is not visible. */
  pid: number;
  uid: number;
  gid: number;
}

export interface ApplyContext {
  procs: Procs;
  obs: Observer;
  nowMs: number;
  closeFd(fd: number): void;
  /** MAINPID= was accepted: the caller watches the new main process. */
  mainPidChanged?(c: Container, pid: number): void;
  /** Runs that start without the launcher (unit/instance.ts); absent: never. */
  runs?: RunHooks;
}

export interface RunHooks {
  /** The current run's main process is known and alive. */
  mainAlive(c: Container): boolean;
  /** Start a new run: the sender is a new start of the container. */
  newMainProcess(c: Container, pid: number): void;
  /** containerInstance() of the agent's own cgroup: its processes never start runs. */
  agentInstance: string | null;
}

export function applyMessage(
  ctx: ApplyContext,
  c: Container,
  m: NotifyMessage,
  sender: Sender,
  fds: readonly number[],
  stats: readonly FdStat[],
): boolean {
  const { obs } = ctx;
  if (ctx.runs && c.config.notifyAccess !== 'none') detectNewRun(ctx, ctx.runs, c, sender);
  const denied = authorize(c, sender);
  if (denied !== null) {
    obs.rejected(c.name, 'unauthorized', denied, sender);
    closeAll(ctx, c, fds, 'unauthorized');
    return false;
  }
  obs.accepted(c.name);
  if (m.values.mainPid !== undefined) applyMainPid(ctx, c, m.values.mainPid, sender);
  applyState(ctx, c, m);
  applyTimers(ctx, c, m);
  applyStore(ctx, c, m, fds, stats);
  return true;
}

/**
 * Before authorization: a new run resets the runtime overrides (N4.6). The cgroup
 * is read once per new sender pid, not per datagram.
 */
function detectNewRun(ctx: ApplyContext, runs: RunHooks, c: Container, s: Sender): void {
  const run = c.run;
  if (s.pid === 0 || (run.checkedSenders.has(s.pid) && run.phase !== 'exited')) return;
  if (run.checkedSenders.size >= CHECKED_SENDERS_MAX) run.checkedSenders.clear();
  run.checkedSenders.add(s.pid);
  const instance = containerInstance(ctx.procs.cgroup(s.pid));
  const facts = { pid: s.pid, alive: ctx.procs.alive(s.pid), instance };
  const own = instance !== null && instance !== runs.agentInstance ? instance : null;
  if (startsNewRun(run, facts, runs.mainAlive(c), runs.agentInstance)) {
    runs.newMainProcess(c, s.pid);
    c.run.instance = own;
    c.run.checkedSenders.add(s.pid);
  } else if (run.instance === null && own !== null) run.instance = own;
}

/** READY/RELOADING/STOPPING (A2.1-A2.3), STATUS (A2.5), NOTIFYACCESS (A2.19), ERRNO (A2.6). */
function applyState(ctx: ApplyContext, c: Container, m: NotifyMessage): void {
  const { obs } = ctx;
  const run = c.run;
  const v = m.values;
  applyPhase(ctx, c, m);

  if (v.status !== undefined) {
    const text = decodeUtf8(v.status);
    // A2.5 quirk kept: invalid UTF-8 clears the previous status.
    if (text === null) obs.warn(c.name, 'STATUS= is not valid UTF-8, clearing status', {});
    run.status = text === null || text === '' ? null : text;
  }
  if (v.notifyAccess !== undefined) {
    const na = parseNotifyAccess(v.notifyAccess);
    // A2.19 quirk kept: an invalid value reverts to the configured one.
    if (na === null) obs.warn(c.name, 'invalid NOTIFYACCESS=, reverting to configured value', { value: v.notifyAccess });
    run.notifyAccessOverride = na;
  }
  if (v.errno !== undefined) {
    const e = parseErrno(v.errno);
    if (e === null) obs.warn(c.name, 'invalid ERRNO=, ignoring', { value: v.errno });
    else run.errno = e;
  }
}

/** READY, RELOADING, STOPPING (A2.1-A2.3). */
function applyPhase(ctx: ApplyContext, c: Container, m: NotifyMessage): void {
  const run = c.run;
  const before = run.phase;
  if (m.flags.stopping) run.stopping();
  else {
    if (m.flags.ready) run.ready(ctx.nowMs);
    if (m.flags.reloading && !m.flags.ready) run.reloading();
  }
  // A2.2: systemd reloads only from running; RELOADING=1 before READY=1 changes nothing.
  const reloadIgnored = m.flags.reloading && !m.flags.ready && !m.flags.stopping && run.phase !== 'reloading';
  if (reloadIgnored && (before === 'starting' || before === 'unknown')) ctx.obs.warn(c.name, 'RELOADING=1 before READY=1, ignoring', {});
  if (m.flags.stopping || m.flags.ready || (m.flags.reloading && !reloadIgnored)) ctx.obs.stateChanged(c.name, run.phase);
}

/** EXTEND_TIMEOUT_USEC (A2.13), WATCHDOG= (A2.10, A2.11), WATCHDOG_USEC= (A2.12). */
function applyTimers(ctx: ApplyContext, c: Container, m: NotifyMessage): void {
  const { obs } = ctx;
  const run = c.run;
  const v = m.values;
  if (v.extendTimeoutUsec !== undefined) {
    const u = parseUsec(v.extendTimeoutUsec);
    if (u === null) obs.warn(c.name, 'invalid EXTEND_TIMEOUT_USEC=, ignoring', { value: v.extendTimeoutUsec });
    else run.extend(ctx.nowMs, u);
  }
  if (v.watchdog !== undefined) {
    if (v.watchdog === '1') {
      run.ping(ctx.nowMs);
      obs.watchdogPing(c.name);
    } else if (v.watchdog === 'trigger') {
      run.trigger();
      obs.watchdogFailed(c.name, 'trigger');
    } else obs.warn(c.name, 'invalid WATCHDOG= value, ignoring', { value: v.watchdog });
  }
  if (v.watchdogUsec !== undefined) {
    const u = parseUsec(v.watchdogUsec);
    if (u === null) obs.warn(c.name, 'invalid WATCHDOG_USEC=, ignoring', { value: v.watchdogUsec });
    else {
      run.watchdogUsecOverride = u;
      run.armWatchdog(ctx.nowMs);
    }
  }
}

/** N4.3. Without a shared PID namespace (pid 0) the socket alone identifies the container. */
function authorize(c: Container, s: Sender): string | null {
  const access = c.notifyAccess();
  if (access === 'none') return 'notify access is none: reception disabled';
  if (access === 'all' || s.pid === 0) return null;
  const main = c.run.mainPid;
  if (main === null) return `notify access is ${access} and the main pid is not known`;
  // `exec` equals `main` here: a container has no ExecStartPre= style control processes.
  if (s.pid !== main) return `notify access is ${access}: only the main pid ${main} may send, not ${s.pid}`;
  return null;
}

/** A2.9, with "the unit's cgroup" read as "the sender's container cgroup". */
function applyMainPid(ctx: ApplyContext, c: Container, value: string, s: Sender): void {
  const { obs, procs } = ctx;
  const pid = parsePid(value);
  const refuse = (why: string): void => obs.warn(c.name, 'MAINPID= refused', { value, why });
  if (s.pid === 0) return refuse('sender pid not visible (no shared PID namespace)');
  if (pid === null) return refuse('not a pid > 1');
  if (pid === c.run.mainPid) return;
  if (c.run.phase === 'exited') return refuse('the run is over: the main process exited');
  if (pid === procs.self()) return refuse('names the agent');
  if (!procs.alive(pid)) return refuse('process not alive or a zombie');
  const target = procs.cgroup(pid);
  const from = procs.cgroup(s.pid);
  if (target === null || from === null || target !== from) {
    if (s.uid !== 0) return refuse('process does not belong to the sender\'s container');
  }
  c.run.mainPid = pid;
  obs.mainPid(c.name, pid);
  ctx.mainPidChanged?.(c, pid);
}

function applyStore(ctx: ApplyContext, c: Container, m: NotifyMessage, fds: readonly number[], stats: readonly FdStat[]): void {
  const { obs } = ctx;
  const rawName = m.values.fdName;
  if (m.flags.fdstoreRemove) {
    // F3.7: removal wins; any fds that came along are extras (D1.28).
    if (rawName === undefined || !isValidFdName(rawName)) {
      obs.warn(c.name, 'FDSTOREREMOVE=1 without a valid FDNAME=, ignoring', {});
    } else {
      const n = c.store.removeByName(rawName);
      if (n > 0) obs.dropped(c.name, 'removed', n, { fdname: rawName });
    }
    closeAll(ctx, c, fds, 'not_stored');
    return;
  }
  if (!m.flags.fdstore) {
    closeAll(ctx, c, fds, 'not_stored');
    return;
  }
  let name = 'stored';
  if (rawName !== undefined) {
    if (isValidFdName(rawName)) name = rawName;
    else obs.warn(c.name, 'FDNAME= is invalid, storing as "stored"', {}); // F3.13
  }
  const r = c.store.add(fds, stats, name, !m.flags.noPoll);
  if (r.stored > 0) obs.stored(c.name, r.stored, name);
  for (const [reason, n] of Object.entries(r.dropped) as [DropReason, number][]) {
    obs.dropped(c.name, reason, n, reason === 'over_limit' ? c.store.limitFields() : r.error ? { error: r.error } : {});
  }
}

export function closeAll(ctx: ApplyContext, c: Container | string, fds: readonly number[], reason: DropReason): void {
  if (fds.length === 0) return;
  for (const fd of fds) ctx.closeFd(fd);
  ctx.obs.dropped(typeof c === 'string' ? c : c.name, reason, fds.length, {});
}
