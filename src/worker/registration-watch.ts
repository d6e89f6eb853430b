import type { Etcd3, IKeyValue } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  type KeyLayout,
  type LeaseSession,
  type Logger,
  readPrefixPaged,
  requestDeadline,
} from "../node/index.js";
import { delay, exponentialBackoff } from "../runtime/index.js";
import { type PrefixSnapshot, PrefixWatcher, type WatchGroup } from "../watcher/index.js";

/**
 * Watches a session's own registration `/R/worker/<name>`: once it is deleted, or found under any
 * lease but the session's (overwritten by hand, or taken by a second process of the name after a
 * deletion), the session no longer is that worker and must stop acting as it (`onLost`, once).
 * Each change of the key costs one read of it (a watch event does not say which lease a put used);
 * a resync after compaction or a reconnect reads it too. Within a round trip of the event, then: a
 * lagging watch is not the only guard, as every start claim also compares the registration's lease.
 * Given the revision at which the registration was made (`registeredAt`), it watches from the next
 * one without reading: the key was the session's then, and every change since is replayed. In a
 * `WatchGroup`, the group's one read (at a revision after registering) shows the key and is judged.
 */
export class RegistrationWatch {
  private readonly aborted = new AbortController();
  private losing = false;
  /** Aborted by `close()` or the signal given to `start()`: a failed read is not tried again. */
  private readonly closing = new AbortController();
  private readonly key: string;
  private readonly watcher: PrefixWatcher;
  /** (In a group) whether the group's first read was judged. */
  private verified = false;

  constructor(
    private readonly options: {
      client: Etcd3;
      keys: KeyLayout;
      name: string;
      lease: LeaseSession;
      logger: Logger;
      /**
       * Called once, before `signal` aborts, when the registration is found gone or another's;
       * `lease` when it went with the lease itself (expired or revoked: etcd no longer knows it).
       */
      onLost: (reason: EschedulerError, lost: "lease" | "registration") => void;
      /** A revision at which the registration was under `lease` (as registering found it); not used in a group. */
      registeredAt?: number;
      /** Watch within this group (one read and one stream with the session's other watches): its first read is judged. */
      group?: WatchGroup;
    },
  ) {
    this.key = options.keys.worker(options.name);
    let known = options.registeredAt;
    // The first view is the registration's revision, read no more (a resync reads the key for real).
    const snapshot = () => {
      const revision = known;
      known = undefined;
      return revision === undefined
        ? readPrefixPaged(options.client, this.key)
        : Promise.resolve({ revision, kvs: [] });
    };
    // In a group, the group's read at R ≥ `registeredAt` shows the key: lost unless it is the lease's there.
    const sink = options.group && {
      replaced: (read: PrefixSnapshot) => {
        if (!this.verified) void this.judge(read.kvs.find((kv) => kv.key.toString() === this.key));
        this.verified = true;
      },
      applied: () => undefined,
    };
    // A prefix watch of the one key (it also hears `<name>…` workers, whose changes are ignored).
    this.watcher = new PrefixWatcher(options.client, this.key, {
      logger: options.logger,
      snapshot,
      group: options.group,
      sink,
    });
    this.watcher.on("change", (change) => {
      if (change.key !== this.key) return;
      if (change.type === "delete") void this.lose("deleted");
      else void this.check();
    });
    this.watcher.on("resync", () => void this.check());
  }

  /** Aborted (with the reason) once the registration is lost. */
  get signal(): AbortSignal {
    return this.aborted.signal;
  }

  /** Starts watching (until `signal` aborts or `close()`), then checks the key once unless it started from `registeredAt`. */
  async start(signal: AbortSignal): Promise<void> {
    signal.addEventListener("abort", () => this.closing.abort(), { once: true });
    const readFirst = this.options.registeredAt === undefined && !this.options.group;
    await this.watcher.start(signal);
    if (readFirst) void this.check();
  }

  close(): Promise<void> {
    this.closing.abort();
    return this.watcher.close();
  }

  /** Reads the key: lost unless it is there under the session's lease. A failed read is tried again, with backoff. */
  private async check(): Promise<void> {
    const backoff = exponentialBackoff({ initialMs: 200, maxMs: 5_000 });
    while (!this.losing && !this.closing.signal.aborted) {
      try {
        const kv = (await this.options.client.get(this.key).options(requestDeadline()).exec()).kvs[0];
        return await this.judge(kv);
      } catch (error) {
        this.options.logger.debug({ err: error, key: this.key }, "registration check failed; trying again");
        await delay(backoff.next(), this.closing.signal).catch(() => undefined);
      }
    }
  }

  /** Lost unless `kv` (the key as read) is there under the session's lease. */
  private async judge(kv: IKeyValue | undefined): Promise<void> {
    if (!kv) await this.lose("deleted");
    else if (kv.lease !== this.options.lease.id)
      await this.lose(kv.lease === "0" ? "overwritten without a lease" : `held by lease ${kv.lease}`);
  }

  /** Reports the loss once; a deletion is first told apart from the lease's own end (one more call, this once). */
  private async lose(how: string): Promise<void> {
    if (this.losing) return;
    this.losing = true;
    const { client, lease, name } = this.options;
    const ttl = await client.leaseClient
      .leaseTimeToLive({ ID: lease.id }, requestDeadline())
      .then((answer) => Number(answer.TTL))
      .catch(() => 0);
    // etcd answers TTL -1 for a lease it no longer has: the registration went with it.
    const lost = ttl < 0 ? "lease" : "registration";
    const reason =
      lost === "lease"
        ? new EschedulerError(
            "ERR_LEASE_LOST",
            `lease ${lease.id} ended (its registration ${this.key} went with it)`,
          )
        : new EschedulerError(
            "ERR_REGISTRATION_LOST",
            `registration of worker ${JSON.stringify(name)} (${this.key}) ${how}, not under this process's lease ${lease.id}`,
          );
    this.options.onLost(reason, lost);
    this.aborted.abort(reason);
  }
}
