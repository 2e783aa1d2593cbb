/**
 * `--exit-when-done`: for pods that end (a Job's, restartPolicy Never or OnFailure) in
 * classic mode, where the agent is an ordinary container and a sidecar that never
 * exits keeps the pod, and so the Job, running forever (native sidecars are stopped by
 * the kubelet instead). The agent exits once the main process of every container it
 * serves (the --container names) has exited, and none has started again for the
 * linger time: a failed container of an OnFailure pod that the kubelet restarts within
 * it still finds its agent and its stored fds. The agent cannot tell success from
 * failure (the main process is the container runtime's child, not ours), so the linger
 * is what covers restarts; the injector passes 0s for Never and 330s for OnFailure
 * (over the kubelet's 5-minute CrashLoopBackOff cap). Pure: timers are injected.
 */
import type { Observer } from '../unit/observer.js';

export interface DoneTimers {
  set(fn: () => void, ms: number): unknown;
  clear(t: unknown): void;
}

export class DoneWatcher {
  private readonly exited = new Map<string, boolean>();
  private timer: unknown = null;
  private fired = false;
  private resolveDone!: () => void;
  /** Resolves once every container has finished for good. */
  readonly done: Promise<void>;

  constructor(names: readonly string[], private readonly lingerMs: number, private readonly timers: DoneTimers) {
    for (const n of names) this.exited.set(n, false);
    this.done = new Promise((r) => (this.resolveDone = r));
  }

  /** Runs starting and main processes exiting; the rest are no-ops. */
  observer(): Observer {
    const none = (): void => {};
    return {
      accepted: none,
      rejected: none,
      dropped: none,
      stored: none,
      warn: none,
      stateChanged: (name, phase) => {
        if (phase === 'exited') this.exitedMain(name);
      },
      mainPid: none,
      watchdogPing: none,
      watchdogFailed: none,
      runStarted: (name) => this.started(name),
      restored: none,
      restoreFailed: none,
    };
  }

  private started(name: string): void {
    if (!this.exited.has(name) || this.fired) return;
    this.exited.set(name, false);
    if (this.timer !== null) this.timers.clear(this.timer);
    this.timer = null;
  }

  private exitedMain(name: string): void {
    if (!this.exited.has(name) || this.fired) return;
    this.exited.set(name, true);
    if (![...this.exited.values()].every(Boolean) || this.timer !== null) return;
    this.timer = this.timers.set(() => {
      this.timer = null;
      this.fired = true;
      this.resolveDone();
    }, this.lingerMs);
  }
}
