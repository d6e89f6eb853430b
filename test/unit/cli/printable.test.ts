import { describe, expect, it } from "vitest";
import { printable, printableDeep } from "../../../src/cli/printable.js";

/** Bytes a terminal acts on: C0 controls (newline included), DEL, C1 controls. */
const RAW_CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

describe("printable", () => {
  it("shows every control character as an escape and leaves printable text as it is", () => {
    expect(printable("\u001b]0;pwned\u0007\u001b[2J")).toBe("\\x1b]0;pwned\\x07\\x1b[2J");
    expect(printable("a\u0000b\nc\td\rz\u007f\u009b")).toBe("a\\x00b\\x0ac\\x09d\\x0dz\\x7f\\x9b");
    expect(printable("w1 → w2, ünïcode 日本")).toBe("w1 → w2, ünïcode 日本");
  });

  it("shows the Unicode bidirectional overrides and isolates as escapes (text that reads other than it is)", () => {
    expect(printable("a\u202eb\u2066c\u2069")).toBe("a\\u202eb\\u2066c\\u2069");
  });

  it("leaves no control character in any string", () => {
    const all = Array.from({ length: 0x2100 }, (_, code) => String.fromCharCode(code)).join("");
    expect(printable(all)).not.toMatch(RAW_CONTROL);
  });

  it("makes every string of a report printable, object keys and nested arrays included; numbers and booleans stay", () => {
    const report = {
      root: "r",
      paused: { by: "\u001b[2Jevil", reason: "x\ny" },
      workers: [
        { name: "w1", labels: { "k\u0007": "v\u0000" }, tasks: 3, registered: true, held: undefined },
      ],
    };
    expect(printableDeep(report)).toEqual({
      root: "r",
      paused: { by: "\\x1b[2Jevil", reason: "x\\x0ay" },
      workers: [{ name: "w1", labels: { "k\\x07": "v\\x00" }, tasks: 3, registered: true, held: undefined }],
    });
    expect(report.paused.by).toBe("\u001b[2Jevil");
  });
});
