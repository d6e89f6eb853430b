/**
 * Task id → task number, for up to millions of ids: open addressing over one Int32Array (hash, number
 * + 1 per slot) with the ids kept in the caller's array. A Map of 1,000,000 strings costs about three
 * times as much to build and probe, and leaves more for the garbage collector.
 */
export class IdTable {
  private readonly slots: Int32Array;
  private readonly mask: number;

  constructor(
    private readonly ids: readonly string[],
    expected: number,
  ) {
    let size = 16;
    while (size < expected * 2) size *= 2;
    this.mask = size - 1;
    this.slots = new Int32Array(size * 2);
  }

  /** Records `ids[index]` as `index`; returns the number it already had, or -1 when it is new. */
  add(index: number): number {
    const id = this.ids[index];
    const hash = hashId(id);
    const { slots, mask, ids } = this;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot * 2 + 1];
      if (held === 0) {
        slots[slot * 2] = hash;
        slots[slot * 2 + 1] = index + 1;
        return -1;
      }
      if (slots[slot * 2] === hash && ids[held - 1] === id) return held - 1;
    }
  }

  /** The number of `id`, or undefined. */
  get(id: string): number | undefined {
    const hash = hashId(id);
    const { slots, mask, ids } = this;
    for (let slot = hash & mask; ; slot = (slot + 1) & mask) {
      const held = slots[slot * 2 + 1];
      if (held === 0) return undefined;
      if (slots[slot * 2] === hash && ids[held - 1] === id) return held - 1;
    }
  }
}

/** FNV-1a over the UTF-16 code units, then Murmur3's finalizer (the table uses the low bits). */
function hashId(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h | 0;
}
