import { describe, expect, it } from "vitest";
import { SafeEmitter } from "../../../src/runtime/index.js";

interface Events {
  tick: [number];
  error: [Error];
}

class Ticker extends SafeEmitter<Events> {
  readonly logged: Array<{ event: string; message: string }> = [];
  constructor() {
    super();
    this.listenerErrorLog = {
      error: (fields, message) => this.logged.push({ event: (fields as { event: string }).event, message }),
    };
  }
}

describe("SafeEmitter (the listener policy of every emitter)", () => {
  it("runs every listener even when one throws, and logs the exception", () => {
    const ticker = new Ticker();
    const heard: number[] = [];
    ticker.on("tick", () => {
      throw new Error("listener bug");
    });
    ticker.on("tick", (n) => heard.push(n));
    expect(() => ticker.emit("tick", 1)).not.toThrow();
    expect(heard).toEqual([1]);
    expect(ticker.logged).toEqual([{ event: "tick", message: "event listener threw; ignored" }]);
  });

  it("removes a once listener after its call, even when it throws", () => {
    const ticker = new Ticker();
    let calls = 0;
    ticker.once("tick", () => {
      calls++;
      throw new Error("listener bug");
    });
    ticker.emit("tick", 1);
    ticker.emit("tick", 2);
    expect(calls).toBe(1);
    expect(ticker.listenerCount("tick")).toBe(0);
  });

  it("logs a rejected promise returned by an async listener instead of leaving it unhandled", async () => {
    const ticker = new Ticker();
    ticker.on("tick", async () => {
      throw new Error("async listener bug");
    });
    ticker.emit("tick", 1);
    await new Promise((resolve) => setImmediate(resolve));
    expect(ticker.logged).toHaveLength(1);
  });

  it("drops an error event nobody listens to instead of throwing it", () => {
    const ticker = new Ticker();
    expect(ticker.emit("error", new Error("nobody hears this"))).toBe(false);
  });
});
