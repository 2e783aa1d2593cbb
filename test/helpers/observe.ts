/**
 * Reading outcomes off a running agent: dropped datagrams and closed fds from its
 * counters, and the leak check (open fds == baseline + stored).
 */
import type { Agent } from './agent.js';

/**
 * What the agent dropped, read from its exact counters in /metrics (summed over
 * its containers): whole datagrams by reason (fdstore_notify_rejected_total) and
 * closed fds by reason (fdstore_fds_dropped_total). Not from log lines: those are
 * rate-limited, and they arrive on the agent's stderr, a different pipe than a
 * barrier's answer, so a barrier does not prove the test has read them yet.
 */
export interface Mark {
  rejected: Record<string, number>;
  closed: Record<string, number>;
}

const REJECTED = /^fdstore_notify_rejected_total\{.*reason="([a-z_]+)".*\}$/;
const CLOSED = /^fdstore_fds_dropped_total\{.*reason="([a-z_]+)".*\}$/;

/** The counters now. Everything sent before a BARRIER=1 round trip is in them. */
export async function mark(agent: Agent): Promise<Mark> {
  const out: Mark = { rejected: {}, closed: {} };
  for (const [series, v] of await agent.metrics()) {
    const r = REJECTED.exec(series);
    if (r) out.rejected[r[1]!] = (out.rejected[r[1]!] ?? 0) + v;
    const c = CLOSED.exec(series);
    if (c) out.closed[c[1]!] = (out.closed[c[1]!] ?? 0) + v;
  }
  return out;
}

const ZERO: Mark = { rejected: {}, closed: {} };

function delta(now: Record<string, number>, from: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(now)) if (v - (from[k] ?? 0) !== 0) out[k] = v - (from[k] ?? 0);
  return out;
}

/** Reasons of datagrams dropped as a whole since `from`, one per datagram, sorted. */
export async function drops(agent: Agent, from: Mark = ZERO): Promise<string[]> {
  const d = delta((await mark(agent)).rejected, from.rejected);
  return Object.keys(d).sort().flatMap((k) => Array<string>(d[k]!).fill(k));
}

/** Number of fds the agent closed for `reason` since `from`. */
export async function closed(agent: Agent, reason: string, from: Mark = ZERO): Promise<number> {
  return (await closedByReason(agent, from))[reason] ?? 0;
}

/** Every close reason since `from` with its count (reasons with none left out). */
export async function closedByReason(agent: Agent, from: Mark = ZERO): Promise<Record<string, number>> {
  return delta((await mark(agent)).closed, from.closed);
}

/**
 * Waits until the agent has closed at least n fds for `reason` since `from`. For
 * hang-ups: they come from epoll on the stored fds, which no barrier orders, so the
 * counter is polled (a state, not a time: the timeout only bounds a failure).
 */
export async function waitClosed(agent: Agent, reason: string, n: number, from: Mark = ZERO, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let got = await closed(agent, reason, from);
  while (got < n) {
    if (!agent.alive) throw new Error(`agent exited while waiting for ${n} ${reason} closes\n${agent.stderrTail()}`);
    if (Date.now() > deadline) throw new Error(`${got} of ${n} fds closed for ${reason} within ${timeoutMs} ms\n${agent.stderrTail()}`);
    await new Promise((r) => setTimeout(r, 20));
    got = await closed(agent, reason, from);
  }
}

/**
 * Fds logged closed for `reason` at or after log index `from` (agent.mark()). Only
 * for an agent that has exited (its /metrics is gone then): its stderr is closed
 * and read to the end, so no line is still in flight. Log lines of shutdown are
 * not rate-limited away: one per container and reason.
 */
export function closedAtExit(agent: Agent, reason: string, from: number): number {
  if (agent.alive) throw new Error('closedAtExit: the agent is still running; use closed() (its counters)');
  return agent
    .since(from)
    .filter((l) => typeof l.count === 'number' && l.reason === reason)
    .reduce((n, l) => n + (l.count as number), 0);
}

/**
 * The leak check: the agent's open-fd count must come to exactly `expected`.
 * Called after a barrier, so everything sent is processed; the short wait only
 * covers an admin connection (`fdstore ls`) the agent has not finished closing.
 */
export async function expectFdCount(agent: Agent, expected: number, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let n = agent.fdCount();
  while (n !== expected && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 10));
    n = agent.fdCount();
  }
  if (n !== expected) {
    const table = [...agent.fdTable()].map(([fd, t]) => `${fd} -> ${t}`).join('\n');
    throw new Error(`agent has ${n} open fds, expected ${expected}\n${table}`);
  }
}
