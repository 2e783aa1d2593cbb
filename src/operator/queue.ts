/**
 * A work queue of keys, level-triggered like client-go's: adding a key that is
 * already waiting does nothing, a key being worked on is worked on again after,
 * never twice at once. Failed keys come back after a per-key back-off. Bounded by
 * the number of distinct keys (managed pods and policies).
 */
export const QUEUE_WORKERS = 4;

export class WorkQueue {
  private readonly waiting = new Set<string>();
  private readonly active = new Set<string>();
  private readonly again = new Set<string>();
  private readonly delayed = new Map<string, NodeJS.Timeout>();
  private running = 0;
  private stopped = false;

  constructor(
    private readonly work: (key: string) => Promise<void>,
    private readonly onError: (key: string, e: unknown) => number | null,
    private readonly workers = QUEUE_WORKERS,
  ) {}

  get depth(): number {
    return this.waiting.size + this.delayed.size;
  }

  add(key: string): void {
    if (this.stopped) return;
    if (this.active.has(key)) {
      this.again.add(key);
      return;
    }
    this.waiting.add(key);
    this.pump();
  }

  /** Add after ms (coalesced: an earlier pending delay for the key wins). */
  addAfter(key: string, ms: number): void {
    if (this.stopped || this.delayed.has(key)) return;
    const t = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    t.unref();
    this.delayed.set(key, t);
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.delayed.values()) clearTimeout(t);
    this.delayed.clear();
    this.waiting.clear();
  }

  private pump(): void {
    while (this.running < this.workers && this.waiting.size > 0 && !this.stopped) {
      const key = this.waiting.values().next().value as string;
      this.waiting.delete(key);
      this.active.add(key);
      this.running++;
      void this.run(key);
    }
  }

  private async run(key: string): Promise<void> {
    try {
      await this.work(key);
    } catch (e) {
      const retryMs = this.onError(key, e);
      if (retryMs !== null) this.addAfter(key, retryMs);
    } finally {
      this.active.delete(key);
      this.running--;
      if (this.again.delete(key)) this.add(key);
      this.pump();
    }
  }
}
