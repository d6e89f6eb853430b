import type { IEvent, IWatchResponse } from "etcd3";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { FragmentJoiner } from "../../../src/watcher/watch-stream.js";

/** A response of watch `id` whose events are numbered (their order is what a join must keep). */
function response(id: number, events: number[], fragment: boolean): IWatchResponse {
  return {
    watch_id: String(id),
    fragment,
    events: events.map((n) => ({ type: "Put", kv: { mod_revision: String(n) } }) as unknown as IEvent),
  } as IWatchResponse;
}

const numbers = (r: IWatchResponse | undefined) => r?.events.map((event) => Number(event.kv.mod_revision));

describe("FragmentJoiner", () => {
  it("gives back each response whole, in order, once its last fragment arrived, whatever the split and the interleaving of watches", () => {
    // Each watch: responses of events, each split into fragments at random points; fragments of
    // different watches interleaved at random (within a watch, in order).
    const split = fc
      .array(fc.integer({ min: 1, max: 1_000 }), { minLength: 0, maxLength: 12 })
      .chain((events) =>
        fc
          .uniqueArray(fc.integer({ min: 1, max: Math.max(1, events.length - 1) }), { maxLength: 4 })
          .map((cuts) => ({ events, cuts: cuts.filter((cut) => cut < events.length).sort((a, b) => a - b) })),
      );
    const watch = fc.array(split, { minLength: 1, maxLength: 4 });
    fc.assert(
      fc.property(
        fc.array(watch, { minLength: 1, maxLength: 3 }),
        fc.infiniteStream(fc.nat()),
        (watches, picks) => {
          const queues = watches.map((responses, id) =>
            responses.flatMap(({ events, cuts }) => {
              const bounds = [0, ...cuts, events.length];
              return bounds
                .slice(1)
                .map((end, i) => response(id, events.slice(bounds[i], end), end < events.length));
            }),
          );
          const joiner = new FragmentJoiner();
          const whole: number[][][] = watches.map(() => []);
          const iterator = picks[Symbol.iterator]();
          while (queues.some((queue) => queue.length > 0)) {
            const open = queues.map((queue, id) => (queue.length > 0 ? id : -1)).filter((id) => id >= 0);
            const id = open[(iterator.next().value as number) % open.length] as number;
            const joined = joiner.join(queues[id]!.shift()!);
            if (joined) {
              expect(joined.watch_id).toBe(String(id));
              whole[id]!.push(numbers(joined)!);
            }
          }
          expect(whole).toEqual(watches.map((responses) => responses.map(({ events }) => events)));
        },
      ),
    );
  });

  it("passes an unfragmented response through untouched", () => {
    const plain = response(1, [5, 6], false);
    expect(new FragmentJoiner().join(plain)).toBe(plain);
  });
});
