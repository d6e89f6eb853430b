/** One revision's events as one watch delivered them (a revision never spans two watch responses). */
export interface RevisionBatch<E> {
  revision: number;
  events: E[];
}

/**
 * Several watches of disjoint key ranges, merged into one revision order: the pure core of a watch of
 * many ranges (`RangesWatcher`). Each watch delivers its own revisions in order, but etcd orders nothing
 * across watches (one catching up from history lags one already live), so a revision is released only
 * once EVERY watch has delivered past it.
 *
 * Invariant: what `deliver` has returned, in order, is every event of every watch up to `revision`,
 * grouped by revision in increasing order, each revision once with the events of all watches; and
 * `revision` is the least revision any watch has delivered up to. A watch that stays quiet holds the
 * others back: the writer that needs the merge to reach a revision writes into every range (a mark).
 * No I/O, no clock.
 */
export class RevisionMerge<E> {
  private readonly delivered: number[];
  private readonly queues: RevisionBatch<E>[][];
  private readonly heads: number[];
  private released: number;

  /** `count` watches, each of which has delivered everything up to `from` (the snapshot's revision). */
  constructor(count: number, from: number) {
    this.delivered = Array.from({ length: count }, () => from);
    this.queues = Array.from({ length: count }, () => []);
    this.heads = Array.from({ length: count }, () => 0);
    this.released = from;
  }

  /** The revision every watch has delivered up to: everything up to it has been released. */
  get revision(): number {
    return this.released;
  }

  /** Revisions held back, waiting for a quieter watch to deliver past them. */
  get pending(): number {
    return this.queues.reduce((sum, queue, index) => sum + queue.length - (this.heads[index] ?? 0), 0);
  }

  /**
   * Watch `watch` delivered `batches` (increasing revisions, each complete; a revision it had already
   * delivered is ignored) and has now delivered everything up to `upTo` (at least its last batch).
   * Returns what is released, in revision order; when nothing but the revision moved, one empty batch at it.
   */
  deliver(watch: number, batches: readonly RevisionBatch<E>[], upTo: number): RevisionBatch<E>[] {
    const queue = this.queues[watch];
    if (!queue) throw new RangeError(`no watch ${watch}`);
    let last = this.delivered[watch] as number;
    for (const batch of batches) {
      if (batch.revision <= last) continue;
      last = batch.revision;
      if (batch.events.length > 0) queue.push(batch);
    }
    this.delivered[watch] = Math.max(last, upTo);
    return this.release();
  }

  private release(): RevisionBatch<E>[] {
    const limit = Math.min(...this.delivered);
    if (limit <= this.released) return [];
    const out: RevisionBatch<E>[] = [];
    for (;;) {
      let next = Number.POSITIVE_INFINITY;
      for (let i = 0; i < this.queues.length; i++) {
        const head = this.queues[i]?.[this.heads[i] as number];
        if (head && head.revision < next) next = head.revision;
      }
      if (next > limit) break;
      const events: E[] = [];
      for (let i = 0; i < this.queues.length; i++) {
        const head = this.queues[i]?.[this.heads[i] as number];
        if (head?.revision === next) {
          for (const event of head.events) events.push(event);
          this.heads[i] = (this.heads[i] as number) + 1;
        }
      }
      out.push({ revision: next, events });
    }
    for (let i = 0; i < this.queues.length; i++) this.compact(i);
    if (out.length === 0 || (out.at(-1) as RevisionBatch<E>).revision < limit)
      out.push({ revision: limit, events: [] });
    this.released = limit;
    return out;
  }

  /** Drops a queue's released batches once they are most of it (amortized O(1) per batch). */
  private compact(index: number): void {
    const queue = this.queues[index] as RevisionBatch<E>[];
    const head = this.heads[index] as number;
    if (head === queue.length) {
      this.queues[index] = [];
      this.heads[index] = 0;
    } else if (head > 1024 && head * 2 > queue.length) {
      this.queues[index] = queue.slice(head);
      this.heads[index] = 0;
    }
  }
}
