import type { IDuplexStream, IEvent, IWatchRequest, IWatchResponse } from "etcd3";
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

/**
 * Joins the fragments of watch responses. A watch created with `fragment: true` gets a response larger
 * than etcd's request limit (a watch catching up sends up to 1,000 revisions in one) as several
 * messages, each but the last marked `fragment`; unfragmented, such a response can exceed what the
 * client accepts in one message (64 MiB), and a watch reconnecting behind that much history would be
 * refused the same response on every retry. A fragment may end inside a revision, so nothing is
 * applied before the last one: `join` returns the whole response then, undefined before.
 */
export class FragmentJoiner {
  private readonly held = new Map<string, IEvent[]>();

  join(response: IWatchResponse): IWatchResponse | undefined {
    const id = String(response.watch_id);
    const held = this.held.get(id);
    if (!held && !response.fragment) return response;
    const events = held ?? [];
    for (const event of response.events) events.push(event);
    if (response.fragment) {
      this.held.set(id, events);
      return undefined;
    }
    this.held.delete(id);
    return { ...response, events };
  }
}
