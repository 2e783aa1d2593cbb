/**
 * The agent's status, put together: the containers read at request time, the
 * event tally, the generation and its waiters. Built once by the composition
 * root (cli/agent.ts); /status reads it through StatusSource.
 */
import { randomUUID } from 'node:crypto';
import { fanout, type Observer } from '../unit/observer.js';
import { buildStatus, type StatusContainer } from './build.js';
import { StatusChanges, type Timers, type Waiting } from './changes.js';
import type { FdTypeCache } from './fdtypes.js';
import { StatusTally } from './tally.js';
import type { AgentInfo, AgentStatus, ConfigState, KeeperState } from './types.js';

/** The config in use and the reloads (config/reload.ts ConfigSource in the agent; config-static.ts for a fixed config). */
export interface ConfigSource {
  state(): ConfigState;
}

/** What GET /status needs (http/status.ts). */
export interface StatusSource {
  readonly generation: number;
  /** The status now (async: new fds are typed a chunk per turn first). */
  current(): Promise<AgentStatus>;
  wait(after: number, ms: number): Waiting | null;
  /** Release every waiting request (shutdown). */
  cancelAll(): void;
  /** Requests waiting now (a gauge). */
  readonly waiting: number;
}

export interface StatusServiceDeps<H> {
  containers(): Iterable<StatusContainer>;
  container(name: string): StatusContainer | undefined;
  config: ConfigSource;
  agent: AgentInfo;
  /** Fd types per store entry (shared with the metrics). */
  types: FdTypeCache;
  /** Monotonic ms (the runs' clock) and wall-clock ms since the epoch. */
  nowMs(): number;
  wallMs(): number;
  timers: Timers<H>;
  maxWaiters?: number;
  /** The `listen:` sockets in force per container (Agent.listening). */
  listening?(container: string): readonly { readonly name: string; readonly kind: string }[];
  /** The keeper as the agent uses it; absent or null without one. */
  keeper?(): KeeperState | null;
}

export class StatusService<H = unknown> implements StatusSource {
  readonly changes: StatusChanges<H>;
  readonly tally: StatusTally;
  /** Wire into the agent's fanout. */
  readonly observer: Observer;

  constructor(private readonly d: StatusServiceDeps<H>) {
    this.tally = new StatusTally(d.wallMs);
    this.changes = new StatusChanges({ runOf: (n) => d.container(n)?.run, timers: d.timers, maxWaiters: d.maxWaiters });
    // The tally first: a waiter woken by a change reads counts that include it.
    this.observer = fanout(this.tally.observer, this.changes.observer);
  }

  get generation(): number {
    return this.changes.generation;
  }

  get waiting(): number {
    return this.changes.waiting;
  }

  /** The config changed (a reload applied or refused a file): wake the watchers. */
  bump(): void {
    this.changes.bump();
  }

  /** After agent.start(): what the runs say now is the baseline, not a change. */
  seed(): void {
    this.changes.seed([...this.d.containers()].map((c) => c.name));
  }

  async current(): Promise<AgentStatus> {
    await this.d.types.warm([...this.d.containers()].map((c) => c.store));
    return this.now();
  }

  /** The status from what is cached and the containers, synchronously (one consistent moment). */
  now(): AgentStatus {
    const keeper = this.d.keeper?.() ?? null;
    return buildStatus({
      generation: this.changes.generation,
      agent: keeper ? { ...this.d.agent, keeper } : this.d.agent,
      config: this.d.config.state(),
      containers: this.d.containers(),
      tally: (n) => this.tally.get(n),
      typeOf: this.d.types.typeOf,
      listening: this.d.listening,
      monoNowMs: this.d.nowMs(),
      wallNowMs: this.d.wallMs(),
    });
  }

  wait(after: number, ms: number): Waiting | null {
    return this.changes.wait(after, ms);
  }

  cancelAll(): void {
    this.changes.cancelAll();
  }
}

/** This agent process: its version, its start, and a random instance id (a restart shows as a new one). */
export function agentInfo(version: string, startedAt: Date): AgentInfo {
  return { version, startedAt: startedAt.toISOString(), instance: randomUUID() };
}
