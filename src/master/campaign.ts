import { setMaxListeners } from "node:events";
import { CompareResult, CompareTarget, type Etcd3, type ICompare } from "etcd3";
import { EschedulerError } from "../errors.js";
import {
  hasLease,
  type KeyLayout,
  LeaseSession,
  type Logger,
  prefixRangeEnd,
  requestDeadline,
} from "../node/index.js";
import { PrefixWatcher } from "../watcher/index.js";
import { leaderFence } from "./fencing.js";

/** What an elected master holds until its leadership ends. */
export interface Leadership {
  /** This master's election key (`/R/election/<lease hex>`), under the campaign lease. */
  readonly key: string;
  readonly createRevision: number;
  /** The election key's create revision: every later leader's is higher, so it orders plans by leader. */
  readonly epoch: number;
  readonly session: LeaseSession;
  /** The compare every write of this leadership carries. */
  readonly fence: ICompare[];
  /** Aborted when the leadership ends: lease lost, election key gone, a failed fence, resignation or stop. */
  readonly signal: AbortSignal;
  /** Ends the leadership (e.g. after a failed fence); the lease is revoked. */
  depose(reason: Error): void;
  /** Ends the leadership and revokes the lease, so a standby is elected at once. Idempotent. */
  resign(): Promise<void>;
}

export interface CampaignOptions {
  client: Etcd3;
  keys: KeyLayout;
  /** Stored as the election key's value (what `readLeader` reports). */
  name: string;
  ttlMs: number;
  logger: Logger;
  /** Abandons the campaign (or ends the leadership it won). */
  signal: AbortSignal;
  /** Called once this master's election key exists, before waiting for the masters ahead of it. */
  onCandidate?: (key: string) => void;
}

/**
 * Campaigns like etcd's Go election: put `/R/election/<lease>` under a fresh lease and wait until every
 * key created before it is gone. The lease is a LeaseSession: a master whose keep-alives go a whole
 * TTL unconfirmed stops leading, and its writes, fenced on the key, fail once etcd expires the lease.
 */
export async function campaign(options: CampaignOptions): Promise<Leadership> {
  const { client, keys, name, logger } = options;
  // Resumable: overdue keep-alives alone do not depose. Every leader write is fenced on the election
  // key, which dies with the lease, so a slow etcd (or a starved process) costs no re-election; only
  // etcd saying the lease is gone, or a whole TTL unconfirmed, ends the leadership.
  const session = await LeaseSession.grant(client, { ttlMs: options.ttlMs, logger, resumable: true });
  const key = keys.electionCandidate(session.id);
  const ended = new AbortController();
  const signal = AbortSignal.any([session.signal, ended.signal, options.signal]);
  // A term's watchers and waits (about a dozen, a fixed number per term) each listen for its end:
  // not a leak, so Node's warning at 11 listeners would only alarm the operator.
  setMaxListeners(64, signal);
  const watcher = new PrefixWatcher(client, keys.electionCandidatesPrefix, { logger });
  signal.addEventListener("abort", () => void watcher.close(), { once: true });
  const end = (reason: Error) => {
    if (!ended.signal.aborted) ended.abort(reason);
  };
  try {
    const createRevision = await createCandidateKey(client, key, name, session.id);
    await watcher.start(signal);
    const ahead = await keysCreatedBefore(client, keys.electionCandidatesPrefix, createRevision, logger);
    options.onCandidate?.(key);
    if (ahead.size > 0) {
      logger.info(
        { electionKey: key, leader: leaderOf(watcher, ahead) },
        "standing by for the current leader",
      );
    }
    await until(watcher, signal, () => {
      if (!watcher.entries.has(key)) {
        end(new EschedulerError("ERR_DEPOSED", `election key ${key} disappeared while campaigning`));
        return false;
      }
      for (const other of ahead) if (watcher.entries.has(other)) return false;
      return true;
    });
    watcher.on("change", (change) => {
      if (change.type === "delete" && change.key === key) {
        end(new EschedulerError("ERR_DEPOSED", `election key ${key} was deleted`));
      }
    });
    return {
      key,
      createRevision,
      epoch: createRevision,
      session,
      fence: leaderFence(key, createRevision),
      signal,
      depose: (reason) => {
        end(reason);
        void session.close();
      },
      resign: async () => {
        end(new EschedulerError("ERR_ABORTED", `resigned (election key ${key})`));
        await watcher.close();
        await session.close();
      },
    };
  } catch (error) {
    end(error instanceof Error ? error : new Error(String(error)));
    await watcher.close();
    await session.close();
    throw signal.aborted && !options.signal.aborted ? signal.reason : error;
  }
}

async function createCandidateKey(
  client: Etcd3,
  key: string,
  name: string,
  leaseId: string,
): Promise<number> {
  const keyBuffer = Buffer.from(key);
  const response = await client.kv.txn(
    {
      compare: [
        { key: keyBuffer, target: CompareTarget.Create, result: CompareResult.Equal, create_revision: 0 },
      ],
      success: [{ request_put: { key: keyBuffer, value: Buffer.from(name), lease: leaseId } }],
      failure: [],
    },
    requestDeadline(),
  );
  if (!response.succeeded) throw new Error(`election key ${key} already exists`);
  return Number(response.header.revision);
}

/**
 * Election keys created before `revision` under a lease: the masters ahead of us. Keys are never
 * re-created, so the set only shrinks. A key without a lease was written by hand and never goes away.
 */
async function keysCreatedBefore(
  client: Etcd3,
  prefix: string,
  revision: number,
  logger: Logger,
): Promise<Set<string>> {
  const response = await client.kv.range(
    {
      key: Buffer.from(prefix),
      range_end: prefixRangeEnd(prefix),
      max_create_revision: revision - 1,
      keys_only: true,
    },
    requestDeadline(),
  );
  return new Set(response.kvs.filter((kv) => hasLease(kv, logger)).map((kv) => kv.key.toString()));
}

function leaderOf(watcher: PrefixWatcher, ahead: Set<string>): string[] {
  return [...ahead].map((key) => watcher.entries.get(key) ?? key);
}

/** Resolves once `done()` holds for the watcher's view (checked now and after every change); rejects when aborted. */
function until(watcher: PrefixWatcher, signal: AbortSignal, done: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const check = () => {
      if (signal.aborted) return finish(signal.reason);
      if (done()) finish();
    };
    const onAbort = () => finish(signal.reason);
    const finish = (error?: unknown) => {
      watcher.off("change", check);
      watcher.off("resync", check);
      signal.removeEventListener("abort", onAbort);
      if (error === undefined) resolve();
      else reject(error);
    };
    watcher.on("change", check);
    watcher.on("resync", check);
    signal.addEventListener("abort", onAbort, { once: true });
    check();
  });
}
