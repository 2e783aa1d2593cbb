/**
 * One long-poll loop per enrolled pod: GET http://POD_IP:PORT/status?after=G&wait=S
 * on the agent's HTTP port, which answers when its state changed (or after S
 * seconds, unchanged). An idle pod costs one open connection and one request per
 * S seconds; a busy one at most one request per change. Failures back off
 * (capped, jittered) and are reported so the FdStore can say AgentUnreachable.
 *
 * The operator dials the IP the API server reports for the pod: a pod can only
 * ever speak for itself (docs/status.md).
 */
import { Agent as HttpAgent, request } from 'node:http';
import type { AgentStatus } from '../../status/types.js';
import { parseStatus, STATUS_BODY_MAX } from './sanitize.js';
import { jitteredDelayMs } from '../kube/backoff.js';

/** Seconds each long-poll may hang on the agent (the agent clips it to its own maximum, 30 s). */
export const POLL_WAIT_SEC = 25;
/** Client-side limit: the wait plus slack; a silent agent past it is a failure. */
const POLL_TIMEOUT_MS = (POLL_WAIT_SEC + 10) * 1000;
/** Failures in a row before the pod's agent counts as unreachable (one blip is not news). */
export const UNREACHABLE_AFTER = 3;
/**
 * The agent answered at once because too many long-polls wait on it already (its
 * `Fdstore-Wait: refused`): someone else is polling this pod too. Wait this long,
 * jittered, instead of asking again in a loop.
 */
export const REFUSED_PAUSE_MS = 5_000;

export interface PollTarget {
  host: string;
  port: number;
}

export interface PollEvents {
  status(s: AgentStatus): void;
  unreachable(why: string): void;
  /** One request's outcome, for metrics. */
  polled(result: 'changed' | 'unchanged' | 'error'): void;
}

/** Keep-alive, one socket per agent: a long-poll stream reuses its connection. */
const keepAlive = new HttpAgent({ keepAlive: true, maxSockets: 1, keepAliveMsecs: 10_000 });

export class Poller {
  private stopped = false;
  private generation = 0;
  private instance: string | null = null;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;
  private abort: AbortController | null = null;

  constructor(
    private target: PollTarget,
    private readonly on: PollEvents,
    private readonly random: () => number = Math.random,
    private readonly waitSec = POLL_WAIT_SEC,
  ) {}

  start(): void {
    void this.loop();
  }

  /** A new pod IP (pod restarted its sandbox): the next request goes there. */
  retarget(t: PollTarget): void {
    if (t.host === this.target.host && t.port === this.target.port) return;
    this.target = t;
    this.generation = 0;
    this.abort?.abort();
  }

  stop(): void {
    this.stopped = true;
    this.abort?.abort();
    if (this.timer) clearTimeout(this.timer);
  }

  private async loop(): Promise<void> {
    while (!this.stopped) {
      try {
        const { status: s, refused } = await this.fetch();
        this.failures = 0;
        if (s.agent.instance !== this.instance || s.generation !== this.generation) {
          this.instance = s.agent.instance;
          this.generation = s.generation;
          this.on.polled('changed');
          this.on.status(s);
        } else this.on.polled('unchanged');
        if (refused) await this.pause(REFUSED_PAUSE_MS / 2 + Math.floor(this.random() * REFUSED_PAUSE_MS));
      } catch (e) {
        if (this.stopped) return;
        this.failures++;
        this.on.polled('error');
        // A new agent process starts its generations at 1 again: ask from 0.
        this.generation = 0;
        if (this.failures === UNREACHABLE_AFTER) this.on.unreachable((e as Error).message);
        await this.pause(jitteredDelayMs(this.failures, this.random));
      }
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.timer = setTimeout(resolve, ms);
    });
  }

  private async fetch(): Promise<{ status: AgentStatus; refused: boolean }> {
    const ac = new AbortController();
    this.abort = ac;
    const path = `/status?after=${this.generation}&wait=${this.generation === 0 ? 0 : this.waitSec}`;
    const r = await getText(this.target, path, ac.signal);
    return { status: parseStatus(r.body), refused: r.wait === 'refused' };
  }
}

function getText(t: PollTarget, path: string, signal: AbortSignal): Promise<{ body: string; wait: string | undefined }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: t.host, port: t.port, path, agent: keepAlive, signal, timeout: POLL_TIMEOUT_MS, headers: { accept: 'application/json' } }, (res) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > STATUS_BODY_MAX) {
          req.destroy(new Error(`status body over ${STATUS_BODY_MAX} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => {
        if (res.statusCode !== 200) reject(new Error(`GET ${path}: HTTP ${res.statusCode}`));
        else resolve({ body: Buffer.concat(chunks).toString('utf8'), wait: res.headers['fdstore-wait'] as string | undefined });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`no answer from ${t.host}:${t.port} in ${POLL_TIMEOUT_MS / 1000} s`)));
    req.on('error', reject);
    req.end();
  });
}
