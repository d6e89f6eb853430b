import type { Etcd3, ITxnRequest } from "etcd3";

/**
 * `client`, whose every write of the barrier's `ready` key (a transaction putting it, or a plain put)
 * first awaits `before()`: a slow network or a paused process, as the barrier sees it.
 */
export function delayedReadyWrites(client: Etcd3, ready: string, before: () => Promise<unknown>): Etcd3 {
  const writesReady = (request: ITxnRequest) =>
    (request.success ?? []).some((op) => op.request_put?.key?.toString() === ready);
  const kv = new Proxy(client.kv, {
    get: (target, prop) =>
      prop === "txn"
        ? async (request: ITxnRequest, ...rest: unknown[]) => {
            if (writesReady(request)) await before();
            return target.txn(request, ...(rest as []));
          }
        : Reflect.get(target, prop, target),
  });
  const put = (key: string) => {
    const builder = client.put(key);
    if (key !== ready) return builder;
    const exec = builder.exec.bind(builder);
    builder.exec = async () => {
      await before();
      return exec();
    };
    return builder;
  };
  return new Proxy(client, {
    get: (target, prop) => (prop === "kv" ? kv : prop === "put" ? put : Reflect.get(target, prop, target)),
  });
}
