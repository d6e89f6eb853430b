import type { IKeyValue } from "etcd3";
import type { ViewKv } from "../../src/master/view/index.js";

/** What a read says of each key-value (from etcd or the master's view): key bytes, value, lease and revisions. */
export const readFacts = (ranges: ReadonlyArray<ReadonlyArray<IKeyValue | ViewKv>>) =>
  ranges.map((kvs) =>
    kvs.map((kv) => [
      Buffer.from(kv.key).toString("hex"),
      kv.value.toString(),
      kv.lease,
      Number(kv.create_revision),
      Number(kv.mod_revision),
    ]),
  );
