// Example handler: `escheduler worker --handler examples/handler.mjs`.
// A handler module default-exports `{ start(task, ctx), stop(task, ctx) }`: `start` resolves once the
// task is up, `stop` once it is down. (It may instead export a function `run(task, ctx)` that runs
// until `ctx.signal` aborts.) `ctx` carries `signal`, `logger` and `worker`. Plain JavaScript so it
// loads without a build.

// Simulated start-up time, in ms (ESCHEDULER_EXAMPLE_START_MS, default 100).
const START_MS = Number(process.env.ESCHEDULER_EXAMPLE_START_MS ?? 100);
// How often a running task logs a heartbeat, in ms.
const BEAT_MS = 5_000;

/** Task id → the timer that simulates its work. */
const running = new Map();

export default {
  async start(task, { logger, signal }) {
    await sleep(START_MS, signal);
    // A payload may ask to fail, to see retries and "failed" statuses in `escheduler status`.
    if (task.payload?.failStart) throw new Error(`task ${task.id} refuses to start (payload.failStart)`);
    let beats = 0;
    const timer = setInterval(() => {
      beats++;
      logger.debug({ beats }, "example task working");
    }, BEAT_MS);
    running.set(task.id, timer);
    logger.info(
      { task: task.id, group: task.group, key: task.key, payload: task.payload },
      "example task started",
    );
  },

  async stop(task, { logger }) {
    clearInterval(running.get(task.id));
    running.delete(task.id);
    await sleep(START_MS / 2);
    logger.info("example task stopped");
  },
};

function sleep(ms, signal) {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(signal.reason);
      },
      { once: true },
    );
  });
}
