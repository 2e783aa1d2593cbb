/**
 * One restore: send a snapshot of a container's fds to a launcher over a
 * non-blocking SOCK_SEQPACKET connection. 19,000 fds fill a socket buffer, so
 * sends wait for writability in the event loop; a launcher that dies or stalls
 * costs the agent nothing: the connection is closed, the store untouched.
 *
 * Memory: the snapshot is the caller's array of entries (references, no
 * copies), and one message is encoded at a time, when the socket can take it.
 *
 * Deadlines (src/restore/deadlines.ts): none lasts past TRANSFER_DEADLINE_MS;
 * once hurried (another restore of the container waits), one whose peer has
 * taken no message for STALL_MS is abandoned.
 */
import type { Kernel, PollHandle } from '../native/kernel.js';
import { STALL_MS, TRANSFER_DEADLINE_MS } from './deadlines.js';
import type { RestoreFailure } from '../unit/reasons.js';
import { END, batches, encodeHeader, type Message, type Passed, type RestoreHeader } from './encode.js';

const POLL_WRITABLE = 2;

/** Why a started transfer ended without its end marker sent. */
export type TransferFailure = Extract<RestoreFailure, 'stalled' | 'timeout' | 'disconnected' | 'shutdown'>;

export type TransferResult = { ok: true; fds: number } | { ok: false; reason: TransferFailure; error: string; sentFds: number };

export class Transfer {
  private readonly queue: Generator<Message>;
  private current: Message | null;
  private handle: PollHandle | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private finished = false;
  private sentFds = 0;
  private hurried = false;
  /** performance.now() of the start or the last message the socket took. */
  private lastProgress = 0;

  constructor(
    private readonly kernel: Kernel,
    private readonly fd: number,
    header: RestoreHeader,
    items: readonly Passed[],
    private readonly done: (r: TransferResult) => void,
  ) {
    this.queue = messages(header, items);
    this.current = this.queue.next().value ?? null;
  }

  start(): void {
    this.lastProgress = performance.now();
    this.deadline = setTimeout(() => this.fail('timeout', `not done after ${TRANSFER_DEADLINE_MS} ms`), TRANSFER_DEADLINE_MS);
    this.pump();
  }

  /**
   * Another restore waits: from now on a peer that takes no message for STALL_MS
   * (counted from its last one) loses the transfer. Idempotent.
   */
  hurry(): void {
    if (this.hurried || this.finished) return;
    this.hurried = true;
    this.armStall(Math.max(0, this.lastProgress + STALL_MS - performance.now()));
  }

  /** Abandon (agent shutdown). */
  cancel(why: string): void {
    this.fail('shutdown', why);
  }

  private pump(): void {
    while (this.current !== null && !this.finished) {
      let rc: number | null;
      try {
        rc = this.kernel.sendFds(this.fd, this.current.data, this.current.fds);
      } catch (e) {
        this.fail('disconnected', `${(e as Error).message}: launcher gone?`);
        return;
      }
      if (rc === null) {
        this.waitWritable();
        return;
      }
      this.sentFds += this.current.fds.length;
      this.lastProgress = performance.now();
      if (this.hurried) this.armStall(STALL_MS);
      this.current = this.queue.next().value ?? null;
    }
    if (!this.finished) this.finish({ ok: true, fds: this.sentFds });
  }

  private waitWritable(): void {
    if (this.handle) return;
    this.handle = this.kernel.pollStart(this.fd, POLL_WRITABLE, (status) => {
      if (status < 0) this.fail('disconnected', `poll error ${status}`);
      else this.pump();
    });
  }

  private armStall(ms: number): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => this.fail('stalled', `peer took no message for ${STALL_MS} ms while another restore waited`), ms);
  }

  private fail(reason: TransferFailure, error: string): void {
    this.finish({ ok: false, reason, error, sentFds: this.sentFds });
  }

  private finish(r: TransferResult): void {
    if (this.finished) return;
    this.finished = true;
    if (this.deadline) clearTimeout(this.deadline);
    if (this.stallTimer) clearTimeout(this.stallTimer);
    if (this.handle) this.kernel.pollStop(this.handle);
    this.handle = null;
    this.current = null;
    this.kernel.tryClose(this.fd);
    this.done(r);
  }
}

function* messages(header: RestoreHeader, items: readonly Passed[]): Generator<Message> {
  yield { data: encodeHeader(header), fds: [] };
  yield* batches(items);
  yield { data: END, fds: [] };
}
