/**
 * Whether the process holding a worker name is alive: a crashed predecessor's registration lingers
 * until etcd expires its lease, which etcd does not do without a leader, and a leader change gives
 * every lease a full TTL again. A lease seen present by one leader (one raft term) for longer than its
 * TTL without that leader changing was renewed by someone: its holder is alive.
 */
import type { Etcd3 } from "etcd3";
import { requestDeadline } from "./requests.js";

/** A lease that outlives its TTL by this much (etcd checks expiries every 500 ms) has been renewed. */
const EXPIRY_SLACK_MS = 1_000;

export class NameHolderCheck {
  private seen?: { lease: string; term: string; since: number };

  constructor(private readonly client: Etcd3) {}

  /**
   * Asks etcd about the holder's lease (ERR_NAME_TAKEN's `holderLease`); true once it has been seen
   * alive within one raft term for longer than its TTL. False while that is not known (expired, a
   * leader change, etcd not answering): the caller keeps waiting.
   */
  async alive(holderLease: string): Promise<boolean> {
    try {
      const answer = await this.client.leaseClient.leaseTimeToLive(
        { ID: holderLease },
        requestDeadline(2_000),
      );
      const term = String(answer.header.raft_term);
      // etcd answers TTL -1 for a lease that is gone (a live one may show 0: whole seconds, rounded down).
      if (Number(answer.TTL) < 0) this.seen = undefined;
      else if (this.seen?.lease !== holderLease || this.seen.term !== term)
        this.seen = { lease: holderLease, term, since: Date.now() };
      else return Date.now() - this.seen.since > Number(answer.grantedTTL) * 1000 + EXPIRY_SLACK_MS;
    } catch {
      this.seen = undefined;
    }
    return false;
  }
}
