import { type Etcd3, GRPCOutOfRangeError, type IEvent, type IKeyValue, type IWatchResponse } from "etcd3";
import { type Logger, requestDeadline, requireLeader } from "../node/index.js";
import { delay, exponentialBackoff, unlessAborted } from "../runtime/index.js";
import { abortedError, closeStream, FragmentJoiner } from "./watch-stream.js";

/** A key range as etcd takes it: from `key` up to `range_end`, exclusive. */
export interface WatchedRange {
  key: Buffer;
  range_end: Buffer;
}

/** What a watcher reads at one revision: every key it needs (at least those of its ranges). */
export type WatchSnapshot = { revision: number; kvs: IKeyValue[] };

/** Why a snapshot replaced the watcher's state after its start: the history it needed is gone. */
export interface WatchResync {
  reason: string;
  /** The revision applied before the fresh read. */
  fromRevision: number;
  /** The fresh read's revision. */
  toRevision: number;
}

/** What a watcher does with what its driver reads and receives; the driver calls nothing else. */
export interface WatchHandler {
  /** The revision everything up to which is applied: a stream opens from it (see `WatchDriver`). */
  revision(): number;
  /**
   * The revision up to which range `range`'s events are applied, when ranges advance apart (a group's
   * independent members): its watch opens from there instead of `revision()`, so a reconnect does not
   * send a busy range's history again because a quiet one has not moved. Absent: `revision()`.
   */
  rangeRevision?(range: number): number;
  /** Reads the snapshot (the first, and after lost history). */
  read(): Promise<WatchSnapshot>;
  /** Adopts `snapshot` as the state at its revision; `resync` is set for every snapshot but the first. */
  replace(snapshot: WatchSnapshot, resync?: WatchResync): void;
  /** One whole response of range `range`'s watch: its events, in revision order, each revision complete. */
  events(range: number, events: IEvent[]): void;
  /** The stream was interrupted (already logged); the driver retries after a backoff. */
  interrupted(error: Error): void;
  /** Called once as the driver closes, before it waits for its loop to stop. */
  closing?(): void;
}

/**
 * The last key change the handler was given (from a snapshot, the newest key; from the stream, the last
 * event): after a reconnect, etcd must still show it at its revision, or its history is not the one applied.
 */
interface Witness {
  key: Buffer;
  /** The revision of the change: a put's mod revision, or the revision of the deletion. */
  revision: number;
  /** For a put: the key-value it wrote (a deletion leaves the key absent at `revision`). */
  put?: IKeyValue;
}

/**
 * Why one watch stream stopped: `resync` alone means the history it needed is gone and a fresh read is
 * due at once; an `error` is retried after a backoff, from a fresh read when `resync` is set too.
 */
type StreamEnd = { resync: string; error?: undefined } | { error: Error; resync?: string };

/**
 * The one watch loop every watcher runs: a snapshot at revision R, then ONE stream with one watch per
 * range (watch id = range index + 1), fragments joined, each response's events handed to the handler;
 * on an error, a reconnect after a backoff; on a compaction past the applied revision, or a store whose
 * revision is behind it (a replaced cluster), a fresh read that replaces the handler's state, then
 * watches from the read's revision. Before a stream resumes, the last change applied is read back at
 * its revision: an etcd restored from a backup and written past that revision again holds another
 * history, which only a fresh read can follow.
 *
 * Every stream opens from the applied revision A itself, not A + 1, and drops the events up to A it
 * gets again. etcd refuses a watch (ErrCompacted) only from a revision BELOW its compaction's, and a
 * compaction at C removes a deletion made at C (the tombstone was the key's last revision there): a
 * watch from A + 1 after a compaction at exactly A + 1 is accepted and never delivers a deletion made
 * at A + 1. From A, any compaction past A is refused, and one at A or below leaves every revision
 * after A whole. Resume invariant: after a stream opens (first or resumed), every change after the
 * applied revision is either delivered or a resync (fresh read) follows.
 *
 * Invariant (with a handler that ignores a revision it already has, as a reconnect from a merge of
 * several ranges replays the ranges that were ahead): every event of the ranges after the latest
 * snapshot is applied once, in revision order; when the history it needs is gone (compaction, another
 * cluster), a fresh snapshot replaces the state (`replace` with a `resync`), never a gap.
 * We drive the raw stream because etcd3's Watcher resumes from the header revision (which can run
 * ahead of the events delivered) and turns compaction into a bare error. We ask for no progress
 * notifications: etcd before 3.4.25/3.5.8 can send one ahead of the events it covers.
 */
export class WatchDriver {
  private readonly closingController = new AbortController();
  private readonly backoff = exponentialBackoff({ initialMs: 50, maxMs: 2_000 });
  private started = false;
  private endStream?: (end: StreamEnd) => void;
  private running?: Promise<void>;
  private closed?: Promise<void>;
  private witness?: Witness;

  /** `name` is what closed-watch errors and start errors call the watcher. */
  constructor(
    private readonly client: Etcd3,
    private readonly ranges: readonly WatchedRange[],
    private readonly handler: WatchHandler,
    private readonly logger: Logger,
    private readonly name: { watch: string; watcher: string },
  ) {}

  /** True once `close()` was called. */
  get isClosing(): boolean {
    return this.closingController.signal.aborted;
  }

  /** Reads the first snapshot, then watches what follows it; rejects (and may be called again) when the read fails. */
  async start(signal?: AbortSignal): Promise<void> {
    if (this.started) throw new Error(`${this.name.watcher} was already started`);
    this.started = true;
    const closing = this.closingController.signal;
    if (signal?.aborted || closing.aborted) throw abortedError(this.name.watch);
    const stop = AbortSignal.any(signal ? [signal, closing] : [closing]);
    try {
      this.adopt(await unlessAborted(this.handler.read(), stop, () => abortedError(this.name.watch)));
    } catch (error) {
      this.started = false; // nothing is running yet, so the caller may try again
      throw error;
    }
    signal?.addEventListener("abort", () => void this.close(), { once: true, signal: closing });
    this.running = this.run();
  }

  /** Stops watching; leaves no stream or timer behind. Idempotent. */
  close(): Promise<void> {
    this.closed ??= (async () => {
      this.closingController.abort(abortedError(this.name.watch));
      this.endStream?.({ error: abortedError(this.name.watch) });
      this.handler.closing?.();
      await this.running;
    })();
    return this.closed;
  }

  private async run(): Promise<void> {
    const closing = this.closingController.signal;
    let resyncReason: string | undefined;
    // The first stream follows the start's snapshot; every later one resumes from an applied revision.
    let reconnecting = false;
    while (!closing.aborted) {
      try {
        if (resyncReason) {
          const fromRevision = this.handler.revision();
          const snapshot = await unlessAborted(this.handler.read(), closing, () =>
            abortedError(this.name.watch),
          );
          this.adopt(snapshot, { reason: resyncReason, fromRevision, toRevision: snapshot.revision });
          resyncReason = undefined;
        } else if (reconnecting) {
          resyncReason = await unlessAborted(this.historyDiffers(), closing, () =>
            abortedError(this.name.watch),
          );
          if (resyncReason) continue;
        }
        reconnecting = true;
        const end = await this.watchUntilEnd();
        if (closing.aborted) break;
        resyncReason = end.resync;
        if (end.error) throw end.error;
      } catch (error) {
        if (closing.aborted) break;
        this.logger.warn({ err: error, revision: this.handler.revision() }, "watch interrupted; retrying");
        this.handler.interrupted(error as Error);
        await delay(this.backoff.next(), closing).catch(() => undefined);
      }
    }
  }

  /**
   * Opens one stream with a watch per range from the handler's revision A (its events up to A, applied
   * already, are dropped); resolves when it can no longer be used.
   */
  private async watchUntilEnd(): Promise<StreamEnd> {
    const closing = this.closingController.signal;
    // Require a leader: a member cut off from its quorum must end the watch, not keep it silent.
    const opening = this.client.watchClient.watch({ interceptors: [requireLeader] });
    // Closed while the stream was opening: it still opens, and must be closed here, since an open
    // stream keeps its connection (and the process) alive after the client is closed.
    opening.then(
      (stream) => {
        if (closing.aborted) closeStream(stream);
      },
      () => undefined,
    );
    const stream = await unlessAborted(opening, closing, () => abortedError(this.name.watch));
    return new Promise<StreamEnd>((resolve) => {
      let ended = false;
      const finish = (end: StreamEnd) => {
        if (ended) return;
        ended = true;
        if (this.endStream === finish) this.endStream = undefined;
        closeStream(stream);
        resolve(end);
      };
      // The error listener stays attached: our own cancel() makes the stream emit CANCELLED later.
      stream.on("error", (error) => finish({ error }));
      stream.on("end", () => finish({ error: new Error("watch stream ended by etcd") }));
      if (closing.aborted) return finish({ error: abortedError(this.name.watch) });
      this.endStream = finish;
      const fragments = new FragmentJoiner();
      // Everything up to `applied` is applied (per range); each watch opens from it so that a compaction
      // past it is refused (see the class comment). etcd reads a start revision of 0 as "now": never below 1.
      const applied = this.ranges.map(
        (_, index) => this.handler.rangeRevision?.(index) ?? this.handler.revision(),
      );
      stream.on("data", (response: IWatchResponse) => {
        if (ended) return;
        const whole = fragments.join(response); // undefined while a fragmented response is still arriving
        if (!whole) return;
        const end = this.handleGuarded(whole, applied);
        if (end) finish(end);
      });
      this.ranges.forEach((range, index) => {
        stream.write({
          create_request: {
            key: range.key,
            range_end: range.range_end,
            start_revision: Math.max(applied[index] ?? 0, 1),
            watch_id: index + 1,
            // A response catching up on history may be larger than one message may be: etcd splits it.
            fragment: true,
          },
        });
      });
    });
  }

  /**
   * `handle`, where a handler that throws (its sink or decoder failed part-way through a response)
   * ends the stream: the state it holds is then unknown, so after a backoff a fresh read replaces it
   * (a resume would skip what the failure left unapplied, and an uncaught throw would end the process).
   */
  private handleGuarded(response: IWatchResponse, applied: number[]): StreamEnd | undefined {
    try {
      return this.handle(response, applied);
    } catch (cause) {
      const message = cause instanceof Error ? cause.message : String(cause);
      const error = new Error(`${this.name.watcher} failed to apply a watch response: ${message}`, { cause });
      return { error, resync: `applying a watch response failed: ${message}` };
    }
  }

  /**
   * Hands one whole response to the handler, without its events up to `applied[range]` (the revision
   * its watch opened from, applied already); returns why the stream must end, if it must.
   */
  private handle(response: IWatchResponse, applied: number[]): StreamEnd | undefined {
    const revision = this.handler.revision();
    const compactRevision = Number(response.compact_revision);
    if (compactRevision > 0) {
      this.logger.warn({ revision, compactRevision }, "watch history compacted; reading again");
      return { resync: `revision ${revision + 1} compacted (at ${compactRevision})` };
    }
    if (response.canceled) {
      const reason = response.cancel_reason || "no reason given";
      return { error: new Error(`etcd canceled the watch on ${this.name.watch}: ${reason}`) };
    }
    const range = Number(response.watch_id) - 1;
    if (!(range >= 0 && range < this.ranges.length)) {
      return { error: new Error(`a watch response for an unknown watch id ${response.watch_id}`) };
    }
    if (response.created) {
      this.backoff.reset();
      // A store behind our state is another history (restored or replaced cluster): only a fresh read is right.
      const headerRevision = Number(response.header.revision);
      if (headerRevision < revision) {
        return { resync: `etcd revision ${headerRevision} is behind the applied ${revision}` };
      }
      this.logger.debug({ from: Math.max(applied[range] ?? 0, 1), range }, "watch connected");
      return undefined;
    }
    const events = afterRevision(response.events, applied[range] ?? 0);
    const last = events.at(-1);
    if (!last) return undefined;
    this.handler.events(range, events);
    this.witness = {
      key: last.kv.key,
      revision: Number(last.kv.mod_revision),
      put: last.type === "Put" ? last.kv : undefined,
    };
    return undefined;
  }

  /** Hands a snapshot to the handler; its newest key becomes the witness. */
  private adopt(snapshot: WatchSnapshot, resync?: WatchResync): void {
    this.handler.replace(snapshot, resync);
    let newest: IKeyValue | undefined;
    for (const kv of snapshot.kvs)
      if (!newest || Number(kv.mod_revision) > Number(newest.mod_revision)) newest = kv;
    this.witness = newest && { key: newest.key, revision: Number(newest.mod_revision), put: newest };
  }

  /**
   * Whether etcd's history is still the one the handler applied, read before a stream resumes: etcd
   * restored from a backup and written past the applied revision again is another history a resumed
   * watch cannot tell apart (it would silently skip what differs). The witness, read at its revision,
   * must be as it was applied: the same key-value there (revisions, version, value); a deletion,
   * absent there and present just before. A reason to read afresh when it is not; undefined when it
   * is, when nothing was applied, or when that revision cannot be read (compacted, or not reached:
   * the watch itself then reports a store behind the applied revision, or a compaction past it, which
   * it is refused from since it opens from the applied revision; one at or below it left every later
   * revision whole).
   */
  private async historyDiffers(): Promise<string | undefined> {
    const witness = this.witness;
    if (!witness) return undefined;
    const at = (revision: number) =>
      this.client.kv.range({ key: witness.key, revision: String(revision) }, requestDeadline()).then(
        (read) => read.kvs[0],
        (error: unknown) => {
          if (error instanceof GRPCOutOfRangeError) return null; // compacted, or a future revision
          throw error;
        },
      );
    const found = await at(witness.revision);
    if (found === null) return undefined;
    const same = witness.put
      ? found?.mod_revision === String(witness.revision) &&
        found.create_revision === witness.put.create_revision &&
        found.version === witness.put.version &&
        found.value.equals(witness.put.value)
      : found === undefined && (await at(witness.revision - 1)) !== undefined;
    if (same) return undefined;
    const reason = `etcd's history differs from the applied one at revision ${witness.revision} (restored from a backup?)`;
    this.logger.warn({ key: witness.key.toString(), revision: witness.revision }, reason);
    return reason;
  }
}

/** `events` (in revision order) after `revision`: the array itself when none is at or below it. */
function afterRevision(events: IEvent[], revision: number): IEvent[] {
  let first = 0;
  while (first < events.length && Number(events[first]?.kv.mod_revision) <= revision) first++;
  return first === 0 ? events : events.slice(first);
}
