/** Stable 32-bit hashes for tie-breaks and rendezvous scores: same input, same number, on every run. */

/** Murmur3's finalizer: spreads every input bit over the whole word. */
export function mix32(value: number): number {
  let h = value | 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a over UTF-16 code units, finalized with mix32. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return mix32(h);
}

/** A well-mixed score for the pair (a, b) of hashes; the rendezvous weight of a key on a worker. */
export function pairHash(a: number, b: number): number {
  return mix32(a ^ Math.imul(b ^ 0x9e3779b9, 0x27d4eb2f));
}
