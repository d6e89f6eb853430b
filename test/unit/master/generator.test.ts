import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateTasks, loadGenerator } from "../../../src/master/generator.js";
import { silentLogger } from "../../../src/node/index.js";

const run = (
  generator: Parameters<typeof generateTasks>[0],
  timeoutMs = 1_000,
  signal = new AbortController().signal,
) => generateTasks(generator, { workers: ["w1"], logger: silentLogger, signal, timeoutMs });

describe("generateTasks", () => {
  it("passes the live workers and a signal, and validates what comes back", async () => {
    let seen: string[] = [];
    const tasks = await run(async ({ workers, signal }) => {
      seen = workers;
      expect(signal.aborted).toBe(false);
      return [{ id: "a" }];
    });
    expect(seen).toEqual(["w1"]);
    expect(tasks.tasks.map((t) => t.task.id)).toEqual(["a"]);
  });

  it("turns a throw (sync or async) into ERR_GENERATOR with the reason", async () => {
    await expect(
      run(() => {
        throw new Error("database down");
      }),
    ).rejects.toMatchObject({ code: "ERR_GENERATOR", message: "generator threw: database down" });
    await expect(run(async () => Promise.reject(new Error("nope")))).rejects.toMatchObject({
      code: "ERR_GENERATOR",
    });
  });

  it("gives up after the timeout even when the generator ignores its signal, and aborts that signal", async () => {
    let aborted: AbortSignal | undefined;
    const started = Date.now();
    await expect(
      run(({ signal }) => {
        aborted = signal;
        return new Promise(() => undefined);
      }, 100),
    ).rejects.toMatchObject({ code: "ERR_GENERATOR", message: "generator timed out after 100ms" });
    expect(Date.now() - started).toBeLessThan(1_000);
    expect(aborted?.aborted).toBe(true);
  });

  it("rethrows the caller's abort reason untouched", async () => {
    const controller = new AbortController();
    const reason = new Error("deposed");
    const pending = run(() => new Promise(() => undefined), 10_000, controller.signal);
    controller.abort(reason);
    await expect(pending).rejects.toBe(reason);
  });
});

describe("loadGenerator", () => {
  const dir = mkdtempSync(join(tmpdir(), "escheduler-generator-"));

  it("returns a function as is and loads a module's default export", async () => {
    const fn = () => [];
    expect(await loadGenerator(fn)).toBe(fn);
    const path = join(dir, "gen.mjs");
    writeFileSync(path, "export default () => [{ id: 'from-module' }];");
    const loaded = await loadGenerator(path);
    expect(await loaded({ signal: new AbortController().signal, workers: [], logger: silentLogger })).toEqual(
      [{ id: "from-module" }],
    );
  });

  it("refuses a module whose default export is not a function with ERR_MODULE", async () => {
    const path = join(dir, "not-a-function.mjs");
    writeFileSync(path, "export default { tasks: [] };");
    await expect(loadGenerator(path)).rejects.toMatchObject({
      code: "ERR_MODULE",
      message: expect.stringContaining("must default-export a function"),
    });
  });
});
