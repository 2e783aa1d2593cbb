/**
 * What the controller needs from its surroundings, as small interfaces: watched
 * caches (kube/watch.ts), the API writes (api.ts), agent pollers (agents/poller.ts)
 * and a clock. Built in cli/operator.ts.
 */
import type { AgentStatus } from '../status/types.js';
import type { PollTarget } from './agents/poller.js';

export type ChangeKind = 'add' | 'update' | 'delete';

export interface Source<T> {
  list(): readonly T[];
  get(namespace: string, name: string): T | undefined;
  onChange(fn: (obj: T, kind: ChangeKind) => void): void;
}

export interface AgentLink {
  retarget(t: PollTarget): void;
  stop(): void;
}

export interface AgentLinks {
  /** Start following a pod's agent; events come back through the callbacks. */
  open(key: string, t: PollTarget, on: { status(s: AgentStatus): void; unreachable(why: string): void }): AgentLink;
}

export interface Clock {
  /** Monotonic milliseconds. */
  nowMs(): number;
  /** Wall clock, RFC 3339. */
  nowIso(): string;
}
