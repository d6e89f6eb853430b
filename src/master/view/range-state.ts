import type { IEvent, IKeyValue, IRangeRequest } from "etcd3";

/** What the state needs of an etcd event: its kind and the key-value it carries. */
export type RangeEvent = Pick<IEvent, "type" | "kv">;

/**
 * A key-value as the state holds it, compact (100,000 of them live in the master): the key as text when it
 * is UTF-8 (its bytes otherwise), the value as text, the revisions as numbers; never changed once stored.
 */
export interface ViewKv {
  readonly key: Buffer | string;
  readonly value: string;
  readonly lease: string;
  readonly create_revision: number;
  readonly mod_revision: number;
}

/** An event as the state keeps it until applied: its key's bytes (latin1) and, for a put, the compact key-value. */
export type ViewEvent = { type: "Put"; bytes: string; kv: ViewKv } | { type: "Delete"; bytes: string };

/** One range of keys: from `key`, up to `range_end` (exclusive), or exactly `key` without one (bytes as latin1). */
interface HeldRange {
  start: string;
  end?: string;
  /** Key (latin1: one character per byte, so it sorts as etcd does) → its key-value. */
  kvs: Map<string, ViewKv>;
  /** The keys in etcd's order, rebuilt only after a key came or went. */
  sorted?: string[];
}

/**
 * The pure core of the master's view: the key-values of some ranges as of one revision, built from a
 * snapshot and the events after it. Invariant: after `replace(s)` and `apply` of every revision in
 * (s.revision, r] in order, `ranges()` equals etcd's read of the same ranges at r. No I/O, no clock.
 */
export class RangeState {
  private readonly held: HeldRange[];
  private appliedRevision = 0;

  constructor(ranges: readonly IRangeRequest[]) {
    this.held = ranges.map((range) => ({
      start: Buffer.from(range.key ?? "").toString("latin1"),
      end: range.range_end === undefined ? undefined : Buffer.from(range.range_end).toString("latin1"),
      kvs: new Map(),
    }));
  }

  /** The revision the state reflects (0 before the first snapshot). */
  get revision(): number {
    return this.appliedRevision;
  }

  /** Replaces everything with `snapshot` (every key under a prefix that covers the ranges), at once. */
  replace(snapshot: { revision: number; kvs: readonly IKeyValue[] }): void {
    for (const range of this.held) {
      range.kvs.clear();
      range.sorted = undefined;
    }
    for (const kv of snapshot.kvs) {
      const bytes = kv.key.toString("latin1");
      const range = this.rangeOf(bytes);
      if (range) store(range, bytes, compact(kv, bytes));
    }
    this.appliedRevision = snapshot.revision;
  }

  /** The part of `event` the state needs, taken out of etcd's response; undefined when it is in no range held. */
  decode(event: RangeEvent): ViewEvent | undefined {
    const bytes = event.kv.key.toString("latin1");
    if (!this.rangeOf(bytes)) return undefined;
    return event.type === "Put"
      ? { type: "Put", bytes, kv: compact(event.kv, bytes) }
      : { type: "Delete", bytes };
  }

  /** Applies one revision's events; a revision not after the state's is ignored (already applied). */
  apply(revision: number, events: readonly RangeEvent[]): void {
    this.applyDecoded(
      revision,
      events.flatMap((event) => this.decode(event) ?? []),
    );
  }

  /** `apply` of events already decoded (`decode`). */
  applyDecoded(revision: number, events: readonly ViewEvent[]): void {
    if (revision <= this.appliedRevision) return;
    for (const event of events) {
      const range = this.rangeOf(event.bytes);
      if (!range) continue;
      if (event.type === "Put") {
        if (store(range, event.bytes, event.kv)) range.sorted = undefined;
      } else if (range.kvs.delete(event.bytes)) {
        range.sorted = undefined;
      }
    }
    this.appliedRevision = revision;
  }

  /** Each range's key-values in key order, as a read of the ranges at `revision` returns them. */
  ranges(): ViewKv[][] {
    return this.held.map((range) => {
      range.sorted ??= [...range.kvs.keys()].sort(byCodeUnit);
      return range.sorted.map((key) => range.kvs.get(key) as ViewKv);
    });
  }

  /** Keys held, over every range. */
  get size(): number {
    return this.held.reduce((sum, range) => sum + range.kvs.size, 0);
  }

  private rangeOf(bytes: string): HeldRange | undefined {
    return this.held.find((range) =>
      range.end === undefined
        ? range.start === bytes
        : bytes >= range.start && (range.end === "\0" || bytes < range.end),
    );
  }
}

/** Stores `kv` under its key's bytes (latin1); true when the key is new. */
function store(range: HeldRange, bytes: string, kv: ViewKv): boolean {
  const had = range.kvs.has(bytes);
  range.kvs.set(bytes, kv);
  return !had;
}

/** `kv` compactly: nothing of etcd's response buffer kept. */
function compact(kv: IKeyValue, bytes: string): ViewKv {
  return {
    key: keyOf(kv.key, bytes),
    value: kv.value.toString(),
    lease: kv.lease === "0" ? "0" : String(kv.lease),
    create_revision: Number(kv.create_revision),
    mod_revision: Number(kv.mod_revision),
  };
}

/** The key as text when it is UTF-8 (an ASCII key's latin1 form is that text already), else a copy of its bytes. */
function keyOf(key: Buffer, latin1: string): Buffer | string {
  if (/^[\x00-\x7f]*$/.test(latin1)) return latin1;
  const text = key.toString();
  return Buffer.from(text).equals(key) ? text : Buffer.from(key);
}

function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
