import type { IDuplexStream, IWatchRequest, IWatchResponse } from "etcd3";
import { EschedulerError } from "../errors.js";

export type WatchStream = IDuplexStream<IWatchRequest, IWatchResponse>;

export function abortedError(prefix: string): EschedulerError {
  return new EschedulerError("ERR_ABORTED", `watch on ${prefix} closed`);
}

export function closeStream(stream: WatchStream): void {
  // end() first so etcd3 does not count our own cancel as a failed host.
  stream.end();
  stream.cancel();
}
