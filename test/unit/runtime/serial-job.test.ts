import { describe, expect, it } from "vitest";
import { SerialJob } from "../../../src/runtime/index.js";

/** A job whose runs end only when the test says so. */
function gatedJob() {
  const runs: Array<() => void> = [];
  let started = 0;
  const job = () =>
    new Promise<void>((resolve) => {
      started++;
      runs.push(resolve);
    });
  const finishRun = async () => {
    runs.shift()?.();
    for (let i = 0; i < 5; i++) await Promise.resolve();
  };
  return { job, finishRun, started: () => started };
}

describe("SerialJob (run one at a time; asked meanwhile, run once more)", () => {
  it("runs once more after the current run however often it was asked meanwhile", async () => {
    const { job, finishRun, started } = gatedJob();
    let idle = 0;
    const serial = new SerialJob(job, { onIdle: () => idle++ });
    serial.request();
    await Promise.resolve();
    await Promise.resolve();
    serial.request();
    serial.request();
    serial.request();
    expect(serial.requestedAgain).toBe(true);
    expect(started()).toBe(1);

    await finishRun();
    expect(started()).toBe(2);
    await finishRun();
    await serial.idle();
    expect(started()).toBe(2);
    expect(serial.running).toBe(false);
    expect(idle).toBe(1);
  });

  it("keeps going after a run that throws, reporting the error", async () => {
    const errors: unknown[] = [];
    let runs = 0;
    const serial = new SerialJob(
      async () => {
        runs++;
        if (runs === 1) {
          serial.request();
          throw new Error("first run failed");
        }
      },
      { onError: (error) => errors.push(error) },
    );
    serial.request();
    await serial.idle();
    expect(runs).toBe(2);
    expect(errors).toHaveLength(1);
  });

  it("never runs two at once, even when the job asks for itself as it starts", async () => {
    let concurrent = 0;
    let most = 0;
    let runs = 0;
    const serial = new SerialJob(async () => {
      concurrent++;
      most = Math.max(most, concurrent);
      if (runs++ === 0) serial.request();
      await new Promise((resolve) => setTimeout(resolve, 5));
      concurrent--;
    });
    serial.request();
    await serial.idle();
    expect(runs).toBe(2);
    expect(most).toBe(1);
  });
});
