/**
 * One soak: a fleet of real processes, rounds of seeded faults, and after each round the fleet healed
 * and given TTL + rebalance-wait + 5 s to run every generated task exactly once; at the end the
 * safety promises over the whole run (no double run, no write by a deposed or paused leader).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import type { Task } from "../src/node/index.js";
import {
  begunMoveFinishes,
  convergenceProblems,
  readState,
  runIntervals,
  safetyProblems,
} from "../test/invariants/index.js";
import { delay, now, retried, SoakFleet } from "./fleet.js";
import { type Action, FAULT_MS, FaultPlanner, faultCounts, type TimedAction } from "./plan.js";
import { SeededRandom } from "./random.js";
import { ActionLog, TaskEventLog } from "./event-log.js";
import { closeOnInterrupt } from "./interrupt.js";
import { describe, unexpectedExits } from "./report.js";

export interface SoakOptions {
  seed: number;
  minutes: number;
  /** Progress lines (one per round); default: none. */
  log?: (line: string) => void;
  /** Keep the processes' logs, task events and etcd history even when every promise held. */
  keep?: boolean;
}

export interface SoakResult {
  seed: number;
  minutes: number;
  rounds: number;
  faults: Map<string, number>;
  /** Schedules applied (`/R/plan` writes) and `escheduler schedule` requests by exit code. */
  schedules: number;
  requests: { applied: number; refused: number; failed: number };
  starts: number;
  stops: number;
  /** Per round, how long the healed fleet took to run every task exactly once (ms). */
  convergeMs: number[];
  /** Per move begun (a task removed while still generated), how long until it was written again (ms). */
  moveMs: number[];
  /** The machine's 1-minute load average after each round (the timing bounds assume a machine not overloaded). */
  load: number[];
  violations: string[];
  /** Processes that crashed (exited unasked, or not 0 on SIGTERM): not one of the promises, but worth a look. */
  crashes: string[];
  /** Where the logs are (removed when every promise held, unless `keep`). */
  dir: string;
}

/** Short leases, a quick rebalance-wait, and slow enough starts and stops that hand-offs overlap faults. */
export const SOAK_TIMINGS = {
  ttlMs: 2_000,
  rebalanceWaitMs: 200,
  // Longer than a quiet period: a task lost by a schedule must not be rescued by the next interval.
  intervalMs: 30_000,
  startDelayMs: 300,
  stopDelayMs: 300,
};
/** A healed fleet runs every generated task exactly once within this long. */
export const QUIET_MS = SOAK_TIMINGS.ttlMs + SOAK_TIMINGS.rebalanceWaitMs + 5_000;
/**
 * A move begun finishes within this long. It needs the old owner's status gone, a live target and a
 * leader that can write; the faults delay these in parallel (one master and two workers at most), the
 * worst chain in sequence being: the target down until its restart (the longest node fault), a leader
 * stopped meanwhile (its lease expiring, renewed once by an etcd leader election: 2 TTL), the new
 * leader's read sent to an isolated member (a linearizable read there waits until the member rejoins:
 * the longest isolation), the schedule that re-targets a move whose target is gone (rebalance-wait),
 * and a restarted process's start-up (1 s). A move that takes longer waited on something no fault explains (seen: 20 s while a
 * restarted worker had exited at start-up instead of waiting for etcd).
 */
const MOVE_BOUND_MS =
  FAULT_MS.node[1] + 2 * SOAK_TIMINGS.ttlMs + FAULT_MS.isolate[1] + SOAK_TIMINGS.rebalanceWaitMs + 1_000;
/** How soon a resumed (SIGCONT) worker must have stopped the tasks it lost while stopped. */
const WAKE_GRACE_MS = 1_000;
const MASTERS = ["m1", "m2"];
const WORKERS = ["w1", "w2", "w3", "w4", "w5"];
const TASK_POOL = Array.from({ length: 40 }, (_, i) => `t${String(i).padStart(2, "0")}`);

const toTasks = (ids: readonly string[]): Task[] =>
  ids.map((id) => ({ id, group: `g${Number(id.slice(1)) % 2}` }));

export async function runSoak(options: SoakOptions): Promise<SoakResult> {
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), "escheduler-soak-"));
  const planner = new FaultPlanner(new SeededRandom(options.seed), {
    masters: MASTERS,
    workers: WORKERS,
    isolatable: [1, 2],
    taskPool: TASK_POOL,
    initialTasks: 24,
    roundMs: [6_000, 12_000],
  });
  const fleet = await SoakFleet.create({
    ...SOAK_TIMINGS,
    dir,
    root: `soak-${options.seed}`,
    masters: MASTERS,
    workers: WORKERS,
    maxMoving: 3,
    tasks: toTasks(planner.tasks),
  });
  const stopListening = closeOnInterrupt(() => fleet.close());
  const result: SoakResult = {
    seed: options.seed,
    minutes: options.minutes,
    rounds: 0,
    faults: new Map(),
    schedules: 0,
    requests: { applied: 0, refused: 0, failed: 0 },
    starts: 0,
    stops: 0,
    convergeMs: [],
    moveMs: [],
    load: [],
    violations: [],
    crashes: [],
    dir,
  };
  const events = new TaskEventLog(fleet.recordFile);
  const actions = new ActionLog(join(dir, "actions.jsonl"));
  let expected = planner.tasks;
  const generator = [{ at: Date.now(), tasks: expected }];
  let generatorChanged = false;
  const started = now();

  const convergence = async (): Promise<string[]> => {
    try {
      // A read etcd fails transiently is tried again (briefly: this is one poll of a timed wait).
      const { view } = await retried(() => readState(fleet.client, fleet.keys), 5_000);
      const { intervals } = runIntervals(events.read(), fleet.fates(), { wakeGraceMs: WAKE_GRACE_MS });
      return convergenceProblems(view, toTasks(expected), WORKERS, intervals);
    } catch (error) {
      return [`cannot read the cluster: ${String(error)}`];
    }
  };
  /** Polls until converged; a violation once `budgetMs` has passed. Resolves with the time taken. */
  const quiet = async (label: string, budgetMs: number): Promise<number | undefined> => {
    const from = Date.now();
    for (;;) {
      const problems = await convergence();
      if (problems.length === 0) {
        result.convergeMs.push(Date.now() - from);
        return Date.now() - from;
      }
      if (Date.now() - from > budgetMs) {
        result.violations.push(
          `${label}: not every generated task ran exactly once ${budgetMs} ms after the fleet was healed (${problems.length} problems): ${problems.slice(0, 6).join("; ")}`,
        );
        return undefined;
      }
      await delay(250);
    }
  };

  const terminating = new Map<string, Promise<void>>();
  /** etcd calls of the harness that failed past their retry bound: no promise can be checked without them. */
  const harnessErrors: string[] = [];
  const inFlight: Array<Promise<void>> = [];
  const operator = async (args: string[]) => {
    const { code, output } = await fleet.operator(args);
    if (code !== 0) log(`  escheduler ${args.join(" ")}: exit ${code}: ${output.split("\n").at(-1)}`);
    return code;
  };
  const schedule = async (allowRemoval: boolean) => {
    const code = await operator([
      "schedule",
      "--reason",
      "soak",
      ...(allowRemoval ? ["--allow-removal"] : []),
    ]);
    if (code === 0) result.requests.applied++;
    else if (code === 1) result.requests.refused++;
    else result.requests.failed++;
    return code;
  };
  const perform = async (action: Action): Promise<void> => {
    switch (action.kind) {
      case "kill":
        return fleet.kill(action.node);
      case "term": {
        // Awaited only if the node is restarted: a failure must not become an unhandled rejection.
        const ending = fleet.terminate(action.node).catch((error: unknown) => {
          harnessErrors.push(`term ${action.node}: ${String(error)}`);
        });
        terminating.set(action.node, ending);
        return;
      }
      case "restart": {
        const ending = terminating.get(action.node);
        terminating.delete(action.node);
        if (!ending) {
          fleet.start(action.node);
          return;
        }
        // A terminated node may take long to exit (its etcd member isolated): the timeline goes on
        // meanwhile, so the faults after it (a heal above all) keep the times the bounds assume.
        inFlight.push(ending.then(() => void fleet.start(action.node)));
        return;
      }
      case "stop":
        return fleet.stop(action.node);
      case "cont":
        return fleet.cont(action.node);
      case "latency":
        return fleet.setLatency(action.node, action.ms);
      case "unlatency":
        return fleet.setLatency(action.node, 0);
      case "isolate":
        return fleet.isolate(action.member);
      case "heal":
        return fleet.healMembers();
      case "pause":
        await operator(["pause", "--reason", "soak"]);
        return;
      case "resume":
        await operator(["resume"]);
        return;
      case "cordon":
      case "drain":
      case "uncordon":
        await operator([action.kind, action.worker]);
        return;
      case "generator":
        expected = action.tasks;
        generator.push({ at: Date.now(), tasks: expected });
        generatorChanged = true;
        fleet.setTasks(toTasks(action.tasks));
        return;
      case "schedule":
        inFlight.push(schedule(action.allowRemoval).then(() => undefined));
        return;
    }
  };
  const play = async (timeline: readonly TimedAction[]) => {
    const from = Date.now();
    for (const { at, action } of timeline) {
      const wait = from + at - Date.now();
      if (wait > 0) await delay(wait);
      const started = Date.now();
      await perform(action);
      actions.record(started, describe(action));
    }
    await Promise.all(inFlight.splice(0));
  };
  /** Undoes whatever the timeline left (a process that exited by itself, a pause, a cordon) and schedules. */
  const heal = async (label: string) => {
    for (const name of [...MASTERS, ...WORKERS]) {
      await fleet.cont(name);
      fleet.setLatency(name, 0);
      fleet.start(name);
    }
    fleet.healMembers();
    // A restarted worker may wait up to a TTL for its old registration to go before it registers.
    const registeredBy = Date.now() + 30_000;
    for (;;) {
      const keys = await retried(() => fleet.client.getAll().prefix(fleet.keys.workersPrefix).keys());
      const missing = WORKERS.filter((worker) => !keys.includes(fleet.keys.worker(worker)));
      if (missing.length === 0) break;
      if (Date.now() > registeredBy) {
        result.violations.push(
          `${label}: workers [${missing}] not registered 30 s after they were restarted`,
        );
        break;
      }
      await delay(250);
    }
    if ((await retried(() => fleet.client.get(fleet.keys.paused).string())) !== null)
      await operator(["resume"]);
    for (const key of await retried(() => fleet.client.getAll().prefix(fleet.keys.cordonsPrefix).keys())) {
      await operator(["uncordon", key.slice(fleet.keys.cordonsPrefix.length)]);
    }
    // After a generator change, the schedule an operator would ask for (nothing else may trigger one);
    // otherwise the fleet must converge by itself.
    if (!generatorChanged) return;
    generatorChanged = false;
    const deadline = Date.now() + 30_000;
    while ((await schedule(true)) !== 0) {
      if (Date.now() > deadline) {
        result.violations.push("no schedule could be applied within 30 s of healing the fleet");
        return;
      }
      await delay(500);
    }
  };

  try {
    for (const name of [...MASTERS, ...WORKERS]) fleet.start(name);
    await quiet("start", 60_000);
    const endAt = Date.now() + options.minutes * 60_000;
    while (Date.now() < endAt) {
      result.rounds++;
      const timeline = planner.round();
      for (const [kind, count] of faultCounts(timeline))
        result.faults.set(kind, (result.faults.get(kind) ?? 0) + count);
      const playing = Date.now();
      const known = result.violations.length;
      await play(timeline);
      const healing = Date.now();
      await heal(`round ${result.rounds}`);
      const healed = Date.now();
      const convergedMs = await quiet(`round ${result.rounds}`, QUIET_MS);
      result.load.push(loadavg()[0]);
      log(
        `round ${result.rounds}: ${timeline
          .filter((e) => e.fault)
          .map((e) => describe(e.action))
          .join(
            ", ",
          )}; played ${healing - playing} ms, healed ${healed - healing} ms, converged in ${convergedMs ?? "—"} ms; load ${loadavg()[0].toFixed(1)}; ${result.violations.length} violations so far`,
      );
      for (const violation of result.violations.slice(known)) log(`  violation: ${violation}`);
    }
    await fleet.history.caughtUp(fleet.client, 30_000);
    const all = events.read();
    result.starts = all.filter((event) => event.event === "start").length;
    result.stops = all.length - result.starts;
    result.schedules = fleet.history.events.filter(
      (e) => e.key === fleet.keys.plan && e.type === "put",
    ).length;
    result.crashes.push(...unexpectedExits(fleet.runs));
    const moves = begunMoveFinishes(fleet.history.events, fleet.keys, generator, MOVE_BOUND_MS, Date.now());
    result.moveMs = moves.map((move) => move.finishedMs ?? Number.POSITIVE_INFINITY);
    result.violations.push(
      ...safetyProblems({
        events: all,
        fates: fleet.fates(),
        history: fleet.history,
        keys: fleet.keys,
        wakeGraceMs: WAKE_GRACE_MS,
        base: started,
        moves: { generator, boundMs: MOVE_BOUND_MS, observedUntil: Date.now() },
      }),
    );
  } catch (error) {
    // etcd unreadable past every retry bound: a failed soak with its logs kept, not a crash.
    harnessErrors.push(error instanceof Error ? (error.stack ?? error.message) : String(error));
  } finally {
    result.violations.push(...harnessErrors.map((error) => `harness could not go on: ${error}`));
    stopListening();
    await fleet.close();
    if (result.violations.length === 0 && !options.keep) rmSync(dir, { recursive: true, force: true });
  }
  return result;
}
