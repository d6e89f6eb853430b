import { describe, expect, it } from "vitest";
import { colorWanted, createLogger, nodeLogger, silentLogger } from "../../../src/node/index.js";

describe("logs", () => {
  it("are coloured only on a terminal without NO_COLOR (and not for TERM=dumb)", () => {
    expect(colorWanted({ isTTY: true }, {})).toBe(true);
    expect(colorWanted({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(colorWanted({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(colorWanted({ isTTY: false }, {})).toBe(false);
    expect(colorWanted({}, {})).toBe(false);
  });

  it("name the node once: the command line's logger already does, a library user's gets the field", () => {
    const cli = createLogger({ name: "w1", role: "worker", pretty: false, level: "silent" });
    expect(nodeLogger(cli, "worker", "w1")).toBe(cli);
    expect(nodeLogger(silentLogger, "worker", "w1").bindings()).toEqual({ worker: "w1" });
    expect(nodeLogger(undefined, "master", "m1").bindings()).toEqual({ master: "m1" });
  });
});
