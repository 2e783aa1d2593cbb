/**
 * GET /status: the agent's state as JSON (status/types.ts AgentStatus), for the
 * operator. `?after=G&wait=S` is a long-poll, a watch in one request: answered
 * when the generation is no longer G, or after S seconds with the status
 * unchanged, so an operator watching 10,000 idle pods holds 10,000 quiet requests
 * instead of polling them.
 *
 * A waiting request cannot be evicted by the connection cap (it is in progress),
 * so at most STATUS_WAITERS_MAX wait at once; more are answered at once, never
 * queued, and say so in the Fdstore-Wait header for the client to back off.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { StatusSource } from '../status/service.js';
import { STATUS_WAIT_MAX_SEC } from '../status/types.js';

/** What a /status request got (a metric label: keep it closed). */
export type StatusRequestKind = 'now' | 'waited' | 'refused_wait' | 'invalid';
export const STATUS_REQUEST_KINDS: readonly StatusRequestKind[] = ['now', 'waited', 'refused_wait', 'invalid'];

/**
 * While a request waits, its socket's inactivity limit is the wait plus this (the
 * server's 10 s idle limit would cut a 30 s wait); restored to the idle limit
 * before the answer is written.
 */
export const STATUS_SOCKET_GRACE_MS = 5_000;

/** The Fdstore-Wait response header: why the answer came when it did. */
export type WaitOutcome = 'none' | 'changed' | 'timeout' | 'refused';

export interface StatusQuery {
  /** The generation the client has; null: answer now. */
  after: number | null;
  /** How long to wait for a change, clipped to STATUS_WAIT_MAX_SEC. */
  waitMs: number;
}

const AFTER = /^\d{1,15}$/;
const WAIT = /^\d{1,9}(?:\.\d{1,3})?$/;

/**
 * Pure: the query string (without `?`). `after` alone waits the longest wait;
 * `wait` alone is an error (there is nothing to wait for). Unknown or repeated
 * parameters are errors too, so a typo does not silently poll.
 */
export function parseStatusQuery(search: string): StatusQuery | { error: string } {
  const params = new URLSearchParams(search);
  const seen = new Set<string>();
  for (const k of params.keys()) {
    if (k !== 'after' && k !== 'wait') return { error: 'unknown parameter: only after and wait' };
    if (seen.has(k)) return { error: `${k} given twice` };
    seen.add(k);
  }
  const after = params.get('after');
  const wait = params.get('wait');
  if (after === null) return wait === null ? { after: null, waitMs: 0 } : { error: 'wait needs after (the generation you have)' };
  if (!AFTER.test(after)) return { error: 'after must be a generation (a non-negative integer)' };
  if (wait !== null && !WAIT.test(wait)) return { error: 'wait must be seconds (a non-negative number)' };
  const sec = wait === null ? STATUS_WAIT_MAX_SEC : Math.min(Number(wait), STATUS_WAIT_MAX_SEC);
  return { after: Number(after), waitMs: Math.round(sec * 1000) };
}

export interface StatusRoute {
  source: StatusSource;
  /** The server's socket inactivity limit (server.timeout), restored after a wait. */
  idleMs: number;
  counted?(kind: StatusRequestKind): void;
  /** A one-line text answer (400). */
  reject(res: ServerResponse, req: IncomingMessage, status: number, line: string): void;
  send(res: ServerResponse, req: IncomingMessage, status: number, type: string, body: string, headers?: Record<string, string>): void;
}

export async function serveStatus(r: StatusRoute, req: IncomingMessage, res: ServerResponse, search: string): Promise<void> {
  const q = parseStatusQuery(search);
  if ('error' in q) {
    r.counted?.('invalid');
    return r.reject(res, req, 400, q.error);
  }
  const src = r.source;
  if (q.after === null || q.after !== src.generation || q.waitMs === 0) {
    r.counted?.('now');
    return await answer(r, req, res, 'none');
  }
  const w = src.wait(q.after, q.waitMs);
  if (w === null) {
    r.counted?.('refused_wait');
    return await answer(r, req, res, 'refused');
  }
  // The client going away ends the wait: its timer and its slot are freed at once.
  const onClose = (): void => w.cancel();
  res.once('close', onClose);
  req.socket.setTimeout(q.waitMs + STATUS_SOCKET_GRACE_MS);
  const outcome = await w.result;
  res.off('close', onClose);
  if (res.destroyed || res.writableEnded) return;
  // Back to the idle limit once the answer is out, not before: building it is async
  // (new fds are typed a chunk per turn), and a busy agent must not cut its own answer.
  res.once('finish', () => req.socket.setTimeout(r.idleMs));
  r.counted?.('waited');
  await answer(r, req, res, outcome === 'cancelled' ? 'none' : outcome);
}

async function answer(r: StatusRoute, req: IncomingMessage, res: ServerResponse, outcome: WaitOutcome): Promise<void> {
  const status = await r.source.current();
  // The client may have gone while new fds were being typed.
  if (res.destroyed) return;
  r.send(res, req, 200, 'application/json; charset=utf-8', `${JSON.stringify(status)}\n`, { 'Fdstore-Wait': outcome });
}
