// Example generator: `escheduler master --generator examples/generator.mjs`.
// A generator module default-exports a function that returns the complete list of tasks; the master
// calls it on every schedule, so the list may change between calls (edit tasks.json, then
// `escheduler schedule`). Plain JavaScript so it loads without a build.
import { readFile } from "node:fs/promises";

const TASKS_FILE = process.env.ESCHEDULER_EXAMPLE_TASKS_FILE ?? new URL("./tasks.json", import.meta.url);

/**
 * Tasks from tasks.json (or ESCHEDULER_EXAMPLE_TASKS_FILE); with ESCHEDULER_EXAMPLE_TASKS=N,
 * N generated tasks instead, spread over three groups with keys and priorities.
 */
export default async function exampleGenerator({ signal, workers, logger }) {
  const count = process.env.ESCHEDULER_EXAMPLE_TASKS;
  const tasks = count ? generateTasks(Number.parseInt(count, 10)) : await readTasks(signal);
  logger.info({ tasks: tasks.length, workers: workers.length }, "example generator listed tasks");
  return tasks;
}

async function readTasks(signal) {
  return JSON.parse(await readFile(TASKS_FILE, { encoding: "utf8", signal }));
}

/**
 * `count` tasks: a third "ingest" feeds (three per customer, sharing the customer as affinity key,
 * started first), a third "crawl" jobs, a third "reports" that weigh twice as much.
 */
export function generateTasks(count) {
  if (!Number.isInteger(count) || count < 0) {
    throw new Error(`ESCHEDULER_EXAMPLE_TASKS must be a whole number, got ${JSON.stringify(count)}`);
  }
  const tasks = [];
  for (let i = 0; i < count; i++) {
    const n = String(i + 1).padStart(3, "0");
    if (i % 3 === 0) {
      const customer = `customer-${Math.floor(i / 9) + 1}`;
      tasks.push({ id: `ingest-${n}`, group: "ingest", key: customer, priority: 10, payload: { customer } });
    } else if (i % 3 === 1) {
      tasks.push({
        id: `crawl-${n}`,
        group: "crawl",
        priority: 5,
        payload: { site: `https://example.org/${n}` },
      });
    } else {
      tasks.push({ id: `report-${n}`, group: "reports", weight: 2, payload: { report: `report-${n}` } });
    }
  }
  return tasks;
}
