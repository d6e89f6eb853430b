import { CompareResult, CompareTarget, type Etcd3, type IKeyValue, type IRequestOp } from "etcd3";
import { type DoubleBarrierKeys, type Logger, prefixRangeEnd, requestDeadline } from "../node/index.js";

/** Counts up to this read the waiters' leases at every check (a count above it reads them by chance). */
const FEW = 16;
/** Doublings of that chance while the count does not fall. */
const MAX_DOUBLINGS = 3;
/** Deletions (each a nested transaction) in one transaction, and the bytes of their keys (etcd takes 1.5 MiB). */
const REMOVALS_PER_TXN = 50;
const REMOVAL_BYTES = 256 * 1024;

/**
 * The reads and writes of one barrier's keys that a participant makes besides its own key: counts of
 * the waiters (`count_only`, a number whatever their number), reads of their leases, and the ready
 * key's writes, each guarded so that a write sent late (a slow network, a paused process) cannot
 * open a later round. A key under the waiters' prefix that is no participant — written by hand
 * without a lease (it would never expire), or under a name no participant has — is deleted when a
 * read finds it (comparing its revision), so it neither holds a leave nor keeps `ready` from clearing.
 */
export class BarrierWaiters {
  private readonly range: { key: Buffer; range_end: Buffer };
  private readonly reported = new Set<string>();

  constructor(
    private readonly client: Etcd3,
    private readonly keys: DoubleBarrierKeys,
    private readonly logger: Logger,
    private readonly random: () => number = Math.random,
  ) {
    this.range = { key: Buffer.from(keys.waitersPrefix), range_end: prefixRangeEnd(keys.waitersPrefix) };
  }

  /** A read answering how many keys are under the waiters' prefix. */
  countOp(): IRequestOp {
    return { request_range: { ...this.range, count_only: true } };
  }

  async count(): Promise<number> {
    const counted = await this.client.kv.txn(
      { compare: [], success: [this.countOp()], failure: [] },
      requestDeadline(),
    );
    return Number(counted.responses[0]?.response_range?.count ?? 0);
  }

  /**
   * Whether a participant is still in. A count of 0 says no, a small one is checked against the leases;
   * a larger one reads them with a chance of `FEW / count`, so the participants waiting read about FEW
   * keys per round of checks between them, however many they are, and keys that are no participant go
   * soon after they appear. The chance doubles with each check (of `counts`, one leaver's) that found
   * the count no lower than the last, up to eight times: keys that are no participant hold the count up.
   * `known`: a count just made (the leave's own), read instead of counting again.
   */
  async anyLeft(counts: { last?: number; stalled: number }, known?: number): Promise<boolean> {
    const count = known ?? (await this.count());
    if (count === 0) return false;
    counts.stalled = counts.last !== undefined && count >= counts.last ? counts.stalled + 1 : 0;
    counts.last = count;
    const chance = (FEW * 2 ** Math.min(counts.stalled, MAX_DOUBLINGS)) / count;
    if (this.random() >= chance) return true;
    return (await this.read()).names.length > 0;
  }

  /** The participants in now (sorted) and the ready key's mod revision (0: absent), at one revision. */
  async read(): Promise<{ names: string[]; readyRevision: number }> {
    const answer = await this.client.kv.txn(
      {
        compare: [],
        success: [
          { request_range: { ...this.range, keys_only: true } },
          { request_range: { key: Buffer.from(this.keys.ready), keys_only: true } },
        ],
        failure: [],
      },
      requestDeadline(),
    );
    const names: string[] = [];
    const strangers: IKeyValue[] = [];
    for (const kv of answer.responses[0]?.response_range?.kvs ?? []) {
      const name = participantOf(this.keys, kv);
      if (name !== undefined) names.push(name);
      else strangers.push(kv);
    }
    if (strangers.length > 0) await this.remove(strangers);
    const ready = answer.responses[1]?.response_range?.kvs[0];
    return { names: names.sort(), readyRevision: Number(ready?.mod_revision ?? 0) };
  }

  /**
   * Writes the ready key for `participants`, only while `ownKey` is as this participant's entry at
   * `entryRevision` wrote it (it is still in that round) and the ready key is as last read (`readyRevision`):
   * a write that arrives late finds either changed and lands nowhere. Resolves with the revision of the
   * ready key that lets this participant pass (its own write, or one written after its entry meanwhile).
   */
  async markReady(
    ownKey: string,
    entryRevision: number,
    readyRevision: number,
    participants: number,
  ): Promise<number | undefined> {
    const ready = Buffer.from(this.keys.ready);
    const answer = await this.client.kv.txn(
      {
        compare: [
          { key: Buffer.from(ownKey), target: "Mod", result: "Equal", mod_revision: entryRevision },
          { key: ready, target: "Mod", result: "Equal", mod_revision: readyRevision },
        ],
        success: [
          {
            request_put: {
              key: ready,
              value: Buffer.from(JSON.stringify({ at: new Date().toISOString(), participants })),
            },
          },
        ],
        failure: [{ request_range: { key: ready, keys_only: true } }],
      },
      requestDeadline(),
    );
    if (answer.succeeded) {
      this.logger.debug({ waiters: participants }, "barrier complete; marked ready");
      return Number(answer.header.revision);
    }
    const now = Number(answer.responses[0]?.response_range?.kvs[0]?.mod_revision ?? 0);
    return now > entryRevision ? now : undefined;
  }

  /** Deletes the ready key once no key is under the waiters' prefix, so the next round starts clean. */
  async clearReady(): Promise<void> {
    await this.client.kv
      .txn(
        {
          // A range compare holds for every key in it; with none left it compares a zero version.
          compare: [
            { ...this.range, target: CompareTarget.Version, result: CompareResult.Equal, version: "0" },
          ],
          success: [{ request_delete_range: { key: Buffer.from(this.keys.ready) } }],
          failure: [],
        },
        requestDeadline(),
      )
      .catch((error: unknown) => this.logger.debug({ err: error }, "could not clear the ready key"));
  }

  /** Deletes keys that are no participant, each only as read (a participant's own write since stays). */
  private async remove(strangers: IKeyValue[]): Promise<void> {
    // Each nested transaction counts two operations against etcd's limit (128 by default) and names its key twice.
    const parts: IKeyValue[][] = [];
    let bytes = 0;
    for (const kv of strangers) {
      const last = parts.at(-1);
      if (!last || last.length >= REMOVALS_PER_TXN || bytes + 2 * kv.key.length > REMOVAL_BYTES) {
        parts.push([kv]);
        bytes = 2 * kv.key.length;
      } else {
        last.push(kv);
        bytes += 2 * kv.key.length;
      }
    }
    const removed: IKeyValue[] = [];
    for (const part of parts) {
      try {
        await this.client.kv.txn({ compare: [], success: part.map(removal), failure: [] }, requestDeadline());
        removed.push(...part);
      } catch (error) {
        this.logger.debug({ err: error }, "could not remove barrier keys that are no participant");
      }
    }
    for (const kv of removed) {
      const key = kv.key.toString();
      if (this.reported.has(key)) continue;
      this.reported.add(key);
      const why = kv.lease === "0" ? "written without a lease" : "not a participant's name";
      this.logger.warn({ key, action: "removed", why }, "barrier waiter key that is no participant");
    }
  }
}

/** The participant a waiter key stands for: a valid name under a lease, or undefined for any other key. */
export function participantOf(keys: DoubleBarrierKeys, kv: IKeyValue): string | undefined {
  return kv.lease === "0" ? undefined : keys.parseWaiter(kv.key.toString());
}

/** Deletes `kv`'s key only as read (a participant's own write since stays). */
function removal(kv: IKeyValue): IRequestOp {
  return {
    request_txn: {
      compare: [{ key: kv.key, target: "Mod", result: "Equal", mod_revision: kv.mod_revision }],
      success: [{ request_delete_range: { key: kv.key } }],
      failure: [],
    },
  };
}
