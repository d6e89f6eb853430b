import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger, type Task } from "../../../src/node/index.js";
import { loadHandler, type TaskContext, taskLauncher } from "../../../src/worker/handler.js";

const task: Task = { id: "t1", payload: { n: 1 } };

function context(): { ctx: TaskContext; controller: AbortController } {
  const controller = new AbortController();
  return { controller, ctx: { signal: controller.signal, logger: silentLogger, worker: "w1" } };
}

function moduleFile(name: string, source: string): string {
  const dir = mkdtempSync(join(tmpdir(), "escheduler-handler-"));
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

describe("handler modules", () => {
  it("loads an ESM module exporting { start, stop } and runs both", async () => {
    const path = moduleFile(
      "handler.mjs",
      'export default { start: (t) => { globalThis.__esm = "start " + t.id; }, stop: (t) => { globalThis.__esm += " stop " + t.id; } };',
    );
    const launcher = await loadHandler(path);
    const { ctx, controller } = context();
    const running = await launcher.launch(task, ctx);
    controller.abort();
    await running.stop();
    expect((globalThis as Record<string, unknown>).__esm).toBe("start t1 stop t1");
  });

  it("loads a CommonJS module exporting run(task, ctx)", async () => {
    const path = moduleFile(
      "handler.cjs",
      "module.exports = (task, ctx) => new Promise((resolve) => ctx.signal.addEventListener('abort', () => { globalThis.__cjs = task.id; resolve(); }));",
    );
    const launcher = await loadHandler(path);
    const { ctx, controller } = context();
    const running = await launcher.launch(task, ctx);
    controller.abort();
    await running.stop();
    expect((globalThis as Record<string, unknown>).__cjs).toBe("t1");
  });

  it("rejects a module without a usable default export with ERR_MODULE naming it", async () => {
    const noDefault = moduleFile("none.mjs", "export const start = () => {};");
    await expect(loadHandler(noDefault)).rejects.toMatchObject({
      code: "ERR_MODULE",
      message: /no default export/,
    });
    const wrongShape = moduleFile("shape.mjs", "export default { start() {} };");
    await expect(loadHandler(wrongShape)).rejects.toMatchObject({
      code: "ERR_MODULE",
      message: expect.stringContaining(JSON.stringify(wrongShape)),
    });
    await expect(loadHandler(wrongShape)).rejects.toThrow(/^[^\n]+$/);
  });

  it("reports a run() that throws at once as the task ending, not as a start failure", async () => {
    const launcher = taskLauncher(() => {
      throw new Error("no");
    });
    const running = await launcher.launch(task, context().ctx);
    await expect(running.ended).resolves.toMatchObject({ message: "no" });
  });

  it("treats a start() that rejects as a failed start", async () => {
    const launcher = taskLauncher({ start: async () => Promise.reject(new Error("down")), stop: () => {} });
    await expect(launcher.launch(task, context().ctx)).rejects.toThrow("down");
  });
});
