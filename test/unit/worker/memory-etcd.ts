import type { Etcd3, ICompare, IRequestOp, IResponseOp } from "etcd3";

interface Stored {
  value: string;
  mod_revision: number;
  create_revision: number;
  version: number;
  lease: string;
}

/**
 * The part of etcd's KV a `StatusWriter` uses, in memory: transactions with compares on a key's
 * mod revision, version or lease, puts under a lease, deletions, ranges and nested transactions, and
 * LeaseTimeToLive with the keys attached to a lease (as the run lock audit asks it), applied
 * atomically when `commitWhen` lets them (a test's scheduler decides the order of concurrent ones).
 * A put under a lease that has ended fails the whole transaction, as etcd's "lease not found" does.
 */
export class MemoryEtcd {
  readonly kv = new Map<string, Stored>();
  revision = 1;
  readonly endedLeases = new Set<string>();
  /** `key@revision` of every mod-revision compare that held in a (nested or outer) transaction that succeeded. */
  readonly heldCompares = new Set<string>();
  /** Every put and deletion transactions applied, in commit order (value undefined: a deletion). */
  readonly history: Array<{ key: string; value?: string }> = [];
  /** Keys a transaction writes while another transaction in flight (sent, not yet answered) writes them too. */
  readonly overlaps: string[] = [];
  private readonly writing = new Map<string, number>();

  constructor(private readonly commitWhen: (label: string) => Promise<void>) {}

  get client(): Etcd3 {
    return {
      kv: { txn: (request: TxnRequest) => this.txn(request) },
      leaseClient: { leaseTimeToLive: (request: { ID: string }) => this.timeToLive(request.ID) },
    } as unknown as Etcd3;
  }

  /** The master (or a script, with a lease) writes, or with `undefined` deletes, a key. */
  write(key: string, value: string | undefined, lease = "0"): void {
    this.revision++;
    if (value === undefined) this.kv.delete(key);
    else this.store(key, value, lease, this.revision);
  }

  private store(key: string, value: string, lease: string, revision: number): void {
    const before = this.kv.get(key);
    this.kv.set(key, {
      value,
      mod_revision: revision,
      create_revision: before?.create_revision ?? revision,
      version: (before?.version ?? 0) + 1,
      lease,
    });
  }

  private async timeToLive(lease: string) {
    await this.commitWhen(`lease ${lease} keys`);
    const keys = [...this.kv].filter(([, stored]) => stored.lease === lease).map(([key]) => Buffer.from(key));
    return { header: { revision: String(this.revision) }, ID: lease, TTL: "10", keys };
  }

  /** A lease ends: every key under it goes. */
  endLease(lease: string): void {
    this.endedLeases.add(lease);
    for (const [key, stored] of this.kv) if (stored.lease === lease) this.kv.delete(key);
  }

  private async txn(request: TxnRequest) {
    const written = new Set(collectWrites([...request.success, ...request.failure]));
    for (const key of written) {
      if (this.writing.has(key)) this.overlaps.push(key);
      this.writing.set(key, (this.writing.get(key) ?? 0) + 1);
    }
    try {
      await this.commitWhen(`txn of ${request.success.length} ops`);
    } finally {
      for (const key of written) {
        const left = (this.writing.get(key) ?? 1) - 1;
        if (left > 0) this.writing.set(key, left);
        else this.writing.delete(key);
      }
    }
    const puts = collectPuts(request.success);
    if (puts.some((lease) => this.endedLeases.has(lease)))
      throw new Error("etcdserver: requested lease not found");
    const result = this.apply(request);
    return { ...result, header: { revision: String(this.revision) } };
  }

  private apply(request: TxnRequest): { succeeded: boolean; responses: IResponseOp[] } {
    const succeeded = request.compare.every((compare) => this.holds(compare));
    if (succeeded)
      for (const compare of request.compare)
        if (compare.target === "Mod")
          this.heldCompares.add(`${String(compare.key)}@${Number(compare.mod_revision)}`);
    const ops = succeeded ? request.success : request.failure;
    let changed = false;
    const responses = ops.map((op): IResponseOp => {
      if (op.request_put) {
        changed = true;
        const { key, value, lease } = op.request_put;
        this.store(String(key), String(value), String(lease ?? "0"), this.revision + 1);
        this.history.push({ key: String(key), value: String(value) });
        return { response_put: {} } as IResponseOp;
      }
      if (op.request_delete_range) {
        changed = this.kv.delete(String(op.request_delete_range.key)) || changed;
        this.history.push({ key: String(op.request_delete_range.key) });
        return { response_delete_range: {} } as IResponseOp;
      }
      if (op.request_txn) {
        const nested = this.apply(op.request_txn as TxnRequest);
        changed = true;
        return { response_txn: nested } as unknown as IResponseOp;
      }
      const key = (op.request_range as { key: Buffer }).key.toString();
      const stored = this.kv.get(key);
      const kvs = stored
        ? [
            {
              key: Buffer.from(key),
              value: Buffer.from(stored.value),
              mod_revision: String(stored.mod_revision),
              create_revision: String(stored.create_revision),
              version: String(stored.version),
              lease: stored.lease,
            },
          ]
        : [];
      return { response_range: { kvs } } as unknown as IResponseOp;
    });
    if (changed) this.revision++;
    return { succeeded, responses };
  }

  private holds(compare: ICompare): boolean {
    const stored = this.kv.get(String(compare.key));
    if (compare.target === "Mod") return (stored?.mod_revision ?? 0) === Number(compare.mod_revision);
    if (compare.target === "Lease") return (stored?.lease ?? "0") === String(compare.lease);
    if (compare.target === "Create")
      return (stored?.create_revision ?? 0) === Number(compare.create_revision);
    if (compare.target === "Version") return (stored?.version ?? 0) === Number(compare.version);
    throw new Error(`compare target ${String(compare.target)} not modelled`);
  }
}

interface TxnRequest {
  compare: ICompare[];
  success: IRequestOp[];
  failure: IRequestOp[];
}

/** The leases of every put a transaction's success branch could make (nested ones included). */
function collectPuts(ops: IRequestOp[]): string[] {
  return ops.flatMap((op) => {
    if (op.request_put) return [String(op.request_put.lease ?? "0")].filter((lease) => lease !== "0");
    if (op.request_txn)
      return collectPuts([...(op.request_txn.success ?? []), ...(op.request_txn.failure ?? [])]);
    return [];
  });
}

/** The keys a transaction's operations (nested ones included, either branch) put or delete. */
function collectWrites(ops: IRequestOp[]): string[] {
  return ops.flatMap((op) => {
    if (op.request_put) return [String(op.request_put.key)];
    if (op.request_delete_range) return [String(op.request_delete_range.key)];
    if (op.request_txn)
      return collectWrites([...(op.request_txn.success ?? []), ...(op.request_txn.failure ?? [])]);
    return [];
  });
}
