import type { Etcd3, IKeyValue } from "etcd3";
import { type Logger, prefixRange, prefixRangeEnd, readRangesPaged } from "../node/index.js";
import { WatchDriver, type WatchHandler, type WatchSnapshot } from "./watch-driver.js";

/** What a member of a group does with its range's snapshots and events (a `WatchHandler` without the read). */
export type MemberHandler = Omit<WatchHandler, "read" | "events"> & {
  events(events: Parameters<WatchHandler["events"]>[1]): void;
};

/** How a watcher starts and stops its stream: its own driver's, or its group's. */
export interface WatchRunner {
  start(signal?: AbortSignal): Promise<void>;
  close(): Promise<void>;
  readonly isClosing: boolean;
}

/**
 * Several independent prefix watches of one process sharing ONE snapshot read and ONE watch stream
 * (a watch per prefix on it), as a worker's session watches its registration, its tasks and the plan:
 * one transaction and one stream where each watcher had its own. The members stay independent: each
 * applies its own prefix's events as they come, none waits for another (unlike `RangesWatcher`, which
 * merges its ranges into one revision order). The snapshot reads every prefix at one revision R and
 * the stream watches each after R; a reconnect resumes each member's watch from the revision that
 * member has applied (a busy member's history is not sent again because a quiet one has not moved;
 * each member ignores what it already has), and a compaction or another history
 * replaces every member's view from one fresh read (each emits its own resync).
 */
export class WatchGroup {
  private readonly members: { prefix: string; handler: MemberHandler }[] = [];
  private driver?: WatchDriver;
  private starting?: Promise<void>;
  /** Each snapshot's key-values by member, as `read` got them. */
  private readonly parts = new WeakMap<WatchSnapshot, IKeyValue[][]>();

  constructor(
    private readonly client: Etcd3,
    private readonly logger: Logger,
  ) {}

  /** Adds the watch of `prefix`, before the group starts; what the member starts and closes the group by. */
  join(prefix: string, handler: MemberHandler): WatchRunner {
    if (this.driver) throw new Error(`the watch group was already started: ${prefix} cannot join`);
    this.members.push({ prefix, handler });
    const group = this;
    return {
      start: (signal) => this.start(signal),
      close: () => this.close(),
      get isClosing() {
        return group.driver?.isClosing ?? false;
      },
    };
  }

  /** Reads every member's prefix at one revision, then watches them on one stream; once for all members (again after a failed read). */
  start(signal?: AbortSignal): Promise<void> {
    this.starting ??= this.ensureDriver()
      .start(signal)
      .catch((error: unknown) => {
        this.starting = undefined;
        throw error;
      });
    return this.starting;
  }

  /** Stops the stream of every member. Idempotent. */
  close(): Promise<void> {
    return this.ensureDriver().close();
  }

  private ensureDriver(): WatchDriver {
    if (this.driver) return this.driver;
    const { members } = this;
    const handler: WatchHandler = {
      revision: () => Math.min(...members.map((member) => member.handler.revision())),
      rangeRevision: (range) => members[range]?.handler.revision() ?? 0,
      read: () => this.read(),
      replace: (snapshot, resync) =>
        members.forEach((member, i) =>
          member.handler.replace(
            { revision: snapshot.revision, kvs: this.parts.get(snapshot)?.[i] ?? [] },
            resync,
          ),
        ),
      events: (range, events) => members[range]?.handler.events(events),
      interrupted: (error) => members.forEach((member) => member.handler.interrupted(error)),
      closing: () => members.forEach((member) => member.handler.closing?.()),
    };
    const ranges = members.map(({ prefix }) => ({
      key: Buffer.from(prefix),
      range_end: prefixRangeEnd(prefix),
    }));
    const watch = members.map((member) => member.prefix).join(" ");
    this.driver = new WatchDriver(this.client, ranges, handler, this.logger.child({ watch }), {
      watch,
      watcher: `WatchGroup for ${watch}`,
    });
    return this.driver;
  }

  private async read(): Promise<WatchSnapshot> {
    const read = await readRangesPaged(
      this.client,
      this.members.map((member) => prefixRange(member.prefix)),
    );
    const snapshot = { revision: read.revision, kvs: read.ranges.flat() };
    this.parts.set(snapshot, read.ranges);
    return snapshot;
  }
}
