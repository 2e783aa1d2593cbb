/**
 * A container as the agent sees it: its settings, its fd store (lives for the pod)
 * and its current run (reset on every start). systemd's "unit".
 */
import type { ContainerConfig } from '../config/types.js';
import type { NotifyAccess } from '../notify/values.js';
import { FdStore, type StoreOps } from '../store/store.js';
import { Run } from './run.js';

export class Container {
  readonly store: FdStore;
  run: Run;
  private runs = 0;
  /** Main-process starts observed (launcher connections). */
  starts = 0;
  restores = 0;
  /** Restore connections that ended without their fds (refused or aborted). */
  restoreFailures = 0;
  /** Set by the restore server: transfers in flight (0 or 1) and connections waiting. */
  restoresInFlight = 0;
  restoresWaiting = 0;

  constructor(
    public config: ContainerConfig,
    ops: StoreOps,
    nowMs: number,
    /** An earlier agent served this container (its sockets were there): the first run is `unknown`. */
    sinceAgentRestart = false,
  ) {
    this.store = new FdStore(config.name, config.fileDescriptorStoreMax, ops);
    this.run = this.newRun(nowMs, sinceAgentRestart);
  }

  get name(): string {
    return this.config.name;
  }

  /** N4.1: the runtime override wins over the configured value. */
  notifyAccess(): NotifyAccess {
    return this.run.notifyAccessOverride ?? this.config.notifyAccess;
  }

  /**
   * A reloaded configuration (systemd's daemon-reload), per field: the store's max
   * at once (the excess closed, see FdStore.setMax: returns how many), watchdogSec
   * from the current run's next arm; every other field is read when it is used
   * (notifyAccess: the next datagram; preserve, releaseAfterSec: the next exit;
   * timeoutStartSec, listen: the next start; watchdogSignal: the next expiry).
   */
  reconfigure(config: ContainerConfig): number {
    this.config = config;
    this.run.setWatchdogSec(config.watchdogSec);
    return this.store.setMax(config.fileDescriptorStoreMax);
  }

  /** A new run: readiness, status and overrides start over (A2.5, N4.6, A2.12). */
  startRun(nowMs: number, mainPid: number | null): Run {
    this.run = this.newRun(nowMs);
    this.run.mainPid = mainPid;
    return this.run;
  }

  private newRun(nowMs: number, sinceAgentRestart = false): Run {
    this.runs++;
    return new Run(this.runs, nowMs, this.config.watchdogSec, this.config.timeoutStartSec, sinceAgentRestart);
  }
}
