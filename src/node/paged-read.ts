import type { Etcd3, IKeyValue, IRangeRequest } from "etcd3";
import { prefixRangeEnd } from "./keys.js";
import { requestDeadline } from "./requests.js";

/** etcd's default `--max-txn-ops`: most operations in one transaction. */
export const MAX_TXN_OPS = 128;
/** Most bytes of keys and values in one transaction: clear of etcd's default 1.5 MiB request limit. */
export const MAX_TXN_BYTES = 1024 * 1024;

/** Keys per page: ~1 MB of task values, well below etcd's response limits however large the fleet. */
export const READ_PAGE_SIZE = 5_000;

export interface PagedReadOptions {
  /** Read at this revision instead of the current one. */
  revision?: number;
  pageSize?: number;
  /** Bounds every request (ms since epoch); default: each request its own `requestDeadline()`. */
  deadline?: number;
}

/** A range over every key that starts with `prefix`. */
export function prefixRange(prefix: string, extra: Partial<IRangeRequest> = {}): IRangeRequest {
  return { key: Buffer.from(prefix), range_end: prefixRangeEnd(prefix), ...extra };
}

/**
 * Reads several ranges at ONE revision, in pages: the first page of every range travels in one
 * transaction (one round trip for a small cluster), and a range with more keys is read on, page by
 * page, at that transaction's revision. A range's own `limit` (e.g. "the oldest key only") is kept.
 */
export async function readRangesPaged(
  client: Etcd3,
  ranges: IRangeRequest[],
  options: PagedReadOptions = {},
): Promise<{ revision: number; ranges: IKeyValue[][] }> {
  const pageSize = options.pageSize ?? READ_PAGE_SIZE;
  // Each page gets its own deadline (a fresh one unless the caller set one).
  const callOptions = () => (options.deadline ? { deadline: options.deadline } : requestDeadline());
  const paged = ranges.map((range) =>
    range.range_end === undefined || Number(range.limit ?? 0) > 0 ? range : { ...range, limit: pageSize },
  );
  const at = options.revision === undefined ? {} : { revision: options.revision };
  const first = await client.kv.txn(
    { compare: [], success: paged.map((range) => ({ request_range: { ...range, ...at } })), failure: [] },
    callOptions(),
  );
  const revision = options.revision ?? Number(first.header.revision);
  return {
    revision,
    ranges: await Promise.all(
      paged.map(async (range, i) => {
        const page = first.responses[i]?.response_range;
        const kvs = [...(page?.kvs ?? [])];
        let more = Boolean(page?.more) && range !== ranges[i];
        while (more) {
          const after = Buffer.concat([(kvs.at(-1) as IKeyValue).key, Buffer.from([0])]);
          const next = await client.kv.range({ ...range, key: after, revision }, callOptions());
          kvs.push(...next.kvs);
          more = Boolean(next.more) && next.kvs.length > 0;
        }
        return kvs;
      }),
    ),
  };
}

/** Every key under `prefix` at one revision, read in pages. */
export async function readPrefixPaged(
  client: Etcd3,
  prefix: string,
  options: PagedReadOptions & { keysOnly?: boolean } = {},
): Promise<{ revision: number; kvs: IKeyValue[] }> {
  const read = await readRangesPaged(
    client,
    [prefixRange(prefix, options.keysOnly ? { keys_only: true } : {})],
    options,
  );
  return { revision: read.revision, kvs: read.ranges[0] ?? [] };
}

/**
 * The keys of `names` that exist, read in transactions of MAX_TXN_OPS ranges (keys only); the
 * revision is the lowest the reads were served at, so every key absent there was absent then.
 */
export async function readNamedKeys(
  client: Etcd3,
  names: readonly string[],
): Promise<{ revision: number; kvs: IKeyValue[] }> {
  let revision = Number.MAX_SAFE_INTEGER;
  const kvs: IKeyValue[] = [];
  for (let start = 0; start < names.length; start += MAX_TXN_OPS) {
    const success = names
      .slice(start, start + MAX_TXN_OPS)
      .map((name) => ({ request_range: { key: Buffer.from(name), keys_only: true } }));
    const response = await client.kv.txn({ compare: [], success, failure: [] }, requestDeadline());
    revision = Math.min(revision, Number(response.header.revision));
    for (const item of response.responses) kvs.push(...(item.response_range?.kvs ?? []));
  }
  return { revision, kvs };
}
