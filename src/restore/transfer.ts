/**
 * One restore: send a snapshot of a container's fds to a launcher over a
 * non-blocking SOCK_SEQPACKET connection. 19,000 fds fill a socket buffer, so
 * sends wait for writability in the event loop; a launcher that dies or stalls
 * costs the agent nothing: the connection is closed, the store untouched.
 *
 * Memory: the snapshot is the caller's array of entries (references, no
 * copies), and one message is encoded at a time, when the socket can take it.
 */
import type { Kernel, PollHandle } from '../native/kernel.js';
import { STALL_MS, TRANSFER_DEADLINE_MS } from './deadlines.js';
import type { RestoreFailure } from './failure.js';
import { END, batches, encodeHeader, type Message, type Passed, type RestoreHeader } from './encode.js';

const POLL_WRITABLE = 2;

/** Why a started transfer ended without its end marker sent. */
export type TransferFailure = Extract<RestoreFailure, 'stalled' | 'timeout' | 'peer_gone' | 'shutdown'>;

export type TransferResult = { ok: true; fds: number } | { ok: false; reason: TransferFailure; error: string; sentFds: number };

export class Transfer {
  private readonly queue: Generator<Message>;
  private current: Message | null;
  private handle: PollHandle | null = null;
  private stallTimer: NodeJS.Timeout | null = null;
  private deadline: NodeJS.Timeout | null = null;
  private finished = false;
  private sentFds = 0;

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
    this.deadline = setTimeout(() => this.fail('timeout', `not done after ${TRANSFER_DEADLINE_MS} ms`), TRANSFER_DEADLINE_MS);
    this.stallTimer = setTimeout(() => this.fail('stalled', `peer took no message for ${STALL_MS} ms`), STALL_MS);
    this.pump();
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
        this.fail('peer_gone', `${(e as Error).message}: launcher gone?`);
        return;
      }
      if (rc === null) {
        this.waitWritable();
        return;
      }
      this.sentFds += this.current.fds.length;
      this.stallTimer?.refresh();
      this.current = this.queue.next().value ?? null;
    }
    if (!this.finished) this.finish({ ok: true, fds: this.sentFds });
  }

  private waitWritable(): void {
    if (this.handle) return;
    this.handle = this.kernel.pollStart(this.fd, POLL_WRITABLE, (status) => {
      if (status < 0) this.fail('peer_gone', `poll error ${status}`);
      else this.pump();
    });
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
