/**
 * Reading outcomes off a running agent: dropped datagrams and closed fds from its
 * log lines, and the leak check (open fds == baseline + stored).
 */
import { CLOSE_REASONS, DROP_REASONS, type Agent, type LogLine } from './agent.js';

function isClose(l: LogLine): boolean {
  return typeof l.count === 'number' && (CLOSE_REASONS as readonly string[]).includes(l.reason ?? '');
}

/** Reasons of datagrams dropped as a whole (warning lines without a count), since `from`. */
export function drops(agent: Agent, from = 0): string[] {
  return agent
    .since(from)
    .filter((l) => !isClose(l) && (DROP_REASONS as readonly string[]).includes(l.reason ?? ''))
    .map((l) => l.reason!);
}

/** Number of fds the agent logged closing for `reason` since `from` (sum of `count`). */
export function closed(agent: Agent, reason: string, from = 0): number {
  return agent
    .since(from)
    .filter((l) => isClose(l) && l.reason === reason)
    .reduce((n, l) => n + (l.count as number), 0);
}

/** Every close reason since `from`, with its total count. */
export function closedByReason(agent: Agent, from = 0): Record<string, number> {
  const out: Record<string, number> = {};
  for (const l of agent.since(from).filter(isClose)) out[l.reason!] = (out[l.reason!] ?? 0) + (l.count as number);
  return out;
}

/** Waits until the agent has logged closing at least n fds for `reason` since `from`. */
export async function waitClosed(agent: Agent, reason: string, n: number, from = 0, timeoutMs = 5_000): Promise<void> {
  await agent.waitForLog(() => closed(agent, reason, from) >= n, timeoutMs, from);
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
