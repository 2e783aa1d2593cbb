/**
 * One restore: send a snapshot of a container's fds to a launcher over a
 * non-blocking SOCK_SEQPACKET connection. 19,000 fds fill a socket buffer, so
 * sends wait for writability in the event loop; a launcher that dies or stalls
 * costs the agent nothing: the connection is closed, the store untouched.
 */
import type { Kernel, PollHandle } from '../native/kernel.js';
import { END, batches, encodeHeader, type Message, type Passed, type RestoreHeader } from './encode.js';

/** A restore that has not finished in this time is abandoned (the launcher exits 111). */
export const RESTORE_TIMEOUT_MS = 30_000;

const POLL_WRITABLE = 2;

export type TransferResult = { ok: true; fds: number } | { ok: false; error: string };

export class Transfer {
  private readonly queue: Generator<Message>;
  private current: Message | null;
  private handle: PollHandle | null = null;
  private timer: NodeJS.Timeout | null = null;
  private finished = false;

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
    this.timer = setTimeout(() => this.finish({ ok: false, error: `timed out after ${RESTORE_TIMEOUT_MS} ms` }), RESTORE_TIMEOUT_MS);
    this.pump();
  }

  /** Abandon (agent shutdown). */
  cancel(why: string): void {
    this.finish({ ok: false, error: why });
  }

  private pump(): void {
    while (this.current !== null && !this.finished) {
      let rc: number | null;
      try {
        rc = this.kernel.sendFds(this.fd, this.current.data, this.current.fds);
      } catch (e) {
        this.finish({ ok: false, error: `${(e as Error).message}: launcher gone?` });
        return;
      }
      if (rc === null) {
        this.waitWritable();
        return;
      }
      this.current = this.queue.next().value ?? null;
    }
    if (!this.finished) this.finish({ ok: true, fds: 0 });
  }

  private waitWritable(): void {
    if (this.handle) return;
    this.handle = this.kernel.pollStart(this.fd, POLL_WRITABLE, (status) => {
      if (status < 0) this.finish({ ok: false, error: `poll error ${status}` });
      else this.pump();
    });
  }

  private finish(r: TransferResult): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.handle) this.kernel.pollStop(this.handle);
    this.handle = null;
    this.kernel.tryClose(this.fd);
    this.done(r);
  }
}

function* messages(header: RestoreHeader, items: readonly Passed[]): Generator<Message> {
  yield { data: encodeHeader(header), fds: [] };
  yield* batches(items);
  yield { data: END, fds: [] };
}
