/**
 * Planner benchmark with placement constraints (issue 20): workers in 3 zones, 20 % of the tasks with
 * a zone selector, half of the 50 groups spread by zone, 10 % of the rest keyed. A first plan, a zone
 * lost, the zone back; 100k tasks × 1,000 workers (target ≤ 500 ms) and 1M × 5,000 (≤ 3 s).
 */
import { plan } from "../src/balancer/index.js";
import type { Task, WorkerSpec } from "../src/balancer/types.js";
import { measure, type PlannerBenchRow } from "./planner.js";

const ZONES = ["eu-1a", "eu-1b", "eu-1c"];

function zonedFleet(workerCount: number): WorkerSpec[] {
  return Array.from({ length: workerCount }, (_, i) => ({
    name: `worker-${String(i).padStart(4, "0")}`,
    labels: { zone: ZONES[i % 3] },
  }));
}

function constrainedTasks(taskCount: number): Task[] {
  return Array.from({ length: taskCount }, (_, i) => {
    const group = i % 50;
    const task: Task = { id: `task-${i}`, group: `group-${group}` };
    if (i % 5 === 1) task.selector = { zone: ZONES[i % 3] };
    else if (group % 2 === 0) task.spread = { label: "zone", maxSkew: 1 };
    else if (i % 10 === 0) task.key = `key-${Math.floor(i / 50)}`;
    return task;
  });
}

export function benchConstrainedPlanner(): PlannerBenchRow[] {
  plan({ workers: zonedFleet(9), tasks: constrainedTasks(1_000) }); // warm the JIT
  const rows: PlannerBenchRow[] = [];
  for (const [taskCount, workerCount, targetMs] of [
    [100_000, 1_000, 500],
    [1_000_000, 5_000, 3_000],
  ] as const) {
    const workers = zonedFleet(workerCount);
    const tasks = constrainedTasks(taskCount);
    const label = `plan ${taskCount / 1000}k tasks × ${workerCount} workers in 3 zones (20 % selector, half the groups spread)`;
    const first = plan({ workers, tasks });
    const left = workers.filter((worker) => worker.labels?.zone !== "eu-1c");
    const lost = plan({ workers: left, tasks, current: first.assignment });
    const cases: Array<[string, () => unknown]> = [
      [`${label}, first plan`, () => plan({ workers, tasks })],
      [`${label}, a zone lost`, () => plan({ workers: left, tasks, current: first.assignment })],
      [`${label}, the zone back`, () => plan({ workers, tasks, current: lost.assignment })],
    ];
    if (taskCount === 100_000) {
      const plain = tasks.map(({ selector: _s, spread: _p, ...task }) => task);
      cases.push([
        `${label.replace(/ in 3 zones.*/, "")} same tasks without constraints, first plan`,
        () => plan({ workers, tasks: plain }),
      ]);
    }
    for (const [name, run] of cases) {
      const { ms, cpuMs, heapMB } = measure(run);
      const constrained = !name.includes("without constraints");
      rows.push({
        name,
        ms,
        cpuMs,
        heapMB,
        value: ms,
        unit: "ms",
        ...(constrained ? { target: `≤ ${targetMs} ms`, met: ms <= targetMs } : {}),
      });
    }
  }
  return rows;
}
