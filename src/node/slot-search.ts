import type { IKeyValue, IRequestOp } from "etcd3";
import { type KeyLayout, prefixRangeEnd } from "./keys.js";
import type { Logger } from "./logger.js";
import { hasLease } from "./records.js";

/**
 * Slots in the first window a refused registrant reads (keys only). When a fleet as large as the cap
 * registers at once, the last registrants find few slots free: with 16, four in ten refused claims
 * found their window full and read on (a transaction each); with 64, one in twenty (1,000 workers).
 */
export const FIRST_WINDOW = 64;

/**
 * Where a registrant looks for a free cap slot without reading every slot. Slots are taken in key
 * order (`0, 1, 10, 100, 101, …, 11, …`), so consecutive ones form one key range. The first claim
 * goes to a random position unread; a refused claim reads the window of slots from that position
 * and claims a free one in it; a window without a free slot moves the search on to the next one,
 * twice as wide, until a window would cover all it has not read: then it reads every slot at once.
 * Only that read, consistent at one revision, can say that every slot is taken.
 */
export class SlotSearch {
  private readonly order: readonly number[];
  /** Position in `order` where the current window begins, its width, and the slots read before it. */
  private start: number;
  private width: number;
  private passed = 0;

  constructor(
    private readonly keys: KeyLayout,
    private readonly cap: number,
    private readonly logger: Logger,
    random: () => number = Math.random,
  ) {
    this.order = slotOrder(cap);
    this.start = Math.floor(random() * cap);
    this.width = Math.min(FIRST_WINDOW, cap);
  }

  /** The slot claimed before anything is read: the one at the random starting position. */
  first(): number {
    return this.order[this.start] as number;
  }

  /** Whether the current window is every slot (then a window without a free slot means the cap is reached). */
  get whole(): boolean {
    return this.width >= this.cap;
  }

  /** The reads of the current window: its one or two key ranges (keys and leases only), or the whole slot range with the holders' names. */
  reads(): IRequestOp[] {
    const prefix = this.keys.workerSlotsPrefix;
    if (this.whole)
      return [{ request_range: { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix) } }];
    const key = (position: number) => Buffer.from(this.keys.workerSlot(this.order[position] as number));
    const end = this.start + this.width;
    const range = (from: number, to: number) => ({
      request_range: {
        key: key(from),
        range_end: to < this.cap ? key(to) : prefixRangeEnd(prefix),
        keys_only: true,
      },
    });
    // A window past the last slot wraps around to the first.
    return end <= this.cap
      ? [range(this.start, end)]
      : [range(this.start, this.cap), range(0, end - this.cap)];
  }

  /**
   * A random free slot of the current window as `slots` (what its reads returned) shows it, or
   * undefined. A slot without a lease was written by hand: it holds nothing (and would never expire).
   */
  pick(slots: IKeyValue[], random: () => number = Math.random): number | undefined {
    const taken = new Set(
      slots
        .filter((kv) => hasLease(kv, this.logger))
        .map((kv) => this.keys.parseWorkerSlot(kv.key.toString())),
    );
    const free: number[] = [];
    const width = Math.min(this.width, this.cap);
    for (let i = 0; i < width; i++) {
      const slot = this.order[(this.start + i) % this.cap] as number;
      if (!taken.has(slot)) free.push(slot);
    }
    return free.length === 0 ? undefined : free[Math.floor(random() * free.length)];
  }

  /** Moves on to the window after the current one, twice as wide, or to every slot once that would cover the rest. */
  advance(): void {
    this.passed += this.width;
    this.start = (this.start + this.width) % this.cap;
    this.width *= 2;
    if (this.passed + this.width >= this.cap) this.width = this.cap;
  }
}

let cachedOrder: { cap: number; order: readonly number[] } | undefined;

/** Slot indices below `cap` in the order of their keys (the decimal strings' order). */
export function slotOrder(cap: number): readonly number[] {
  if (cachedOrder?.cap !== cap) {
    const order = Array.from({ length: cap }, (_, i) => String(i))
      .sort()
      .map(Number);
    cachedOrder = { cap, order };
  }
  return cachedOrder.order;
}
