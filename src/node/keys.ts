import { EschedulerError } from "../errors.js";
import { assertValidName, type NameKind, nameProblem } from "./names.js";

export { assertValidName, type NameKind, nameProblem } from "./names.js";

/** The only place that builds or parses an escheduler key. Every key starts with `/<root>/`. */

const HISTORY_DIGITS = 16;
const HISTORY_LEAF = /^[0-9]{16}$/;

export interface TaskKeyParts {
  worker: string;
  taskId: string;
}

/** Key layout under one root; build with `keyLayout(root)`. */
export class KeyLayout {
  readonly root: string;
  readonly prefix: string;

  constructor(root: string) {
    assertValidName("root", root);
    this.root = root;
    this.prefix = `/${root}/`;
  }

  /** Prefix of all worker registrations. */
  get workersPrefix(): string {
    return `${this.prefix}worker/`;
  }
  worker(name: string): string {
    return this.leafKey("worker name", this.workersPrefix, name);
  }
  /** Worker name of a registration key, or undefined when the key is not one. */
  parseWorker(key: string): string | undefined {
    return this.leaf(key, this.workersPrefix);
  }

  /** Prefix of the worker-cap slots: `/R/slot/<i>` for i in [0, cap), held under a registered worker's lease. */
  get workerSlotsPrefix(): string {
    return `${this.prefix}slot/`;
  }
  workerSlot(index: number): string {
    if (!Number.isSafeInteger(index) || index < 0)
      throw new EschedulerError("ERR_BAD_NAME", `invalid worker slot ${JSON.stringify(index)}`);
    return `${this.workerSlotsPrefix}${index}`;
  }
  /** Slot index of a slot key, or undefined when the key is not one. */
  parseWorkerSlot(key: string): number | undefined {
    const rest = this.leaf(key, this.workerSlotsPrefix);
    return rest !== undefined && /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : undefined;
  }

  get tasksPrefix(): string {
    return `${this.prefix}task/`;
  }
  workerTasksPrefix(worker: string): string {
    return `${this.leafKey("worker name", this.tasksPrefix, worker)}/`;
  }
  task(worker: string, taskId: string): string {
    return this.leafKey("task id", this.workerTasksPrefix(worker), taskId);
  }
  parseTask(key: string): TaskKeyParts | undefined {
    return this.pair(key, this.tasksPrefix);
  }

  get statusPrefix(): string {
    return `${this.prefix}status/`;
  }
  workerStatusPrefix(worker: string): string {
    return `${this.leafKey("worker name", this.statusPrefix, worker)}/`;
  }
  status(worker: string, taskId: string): string {
    return this.leafKey("task id", this.workerStatusPrefix(worker), taskId);
  }
  parseStatus(key: string): TaskKeyParts | undefined {
    return this.pair(key, this.statusPrefix);
  }

  /** Prefix of the run locks: `/R/run/<taskId>` = the worker running it, under that worker's lease. */
  get runLocksPrefix(): string {
    return `${this.prefix}run/`;
  }
  /** A task's run lock, taken with its start claim: while it exists no other worker may start the task. */
  runLock(taskId: string): string {
    return this.leafKey("task id", this.runLocksPrefix, taskId);
  }
  /** Task id of a run lock key, or undefined when the key is not one. */
  parseRunLock(key: string): string | undefined {
    return this.leaf(key, this.runLocksPrefix);
  }

  /** Prefix of the moves begun: `/R/move/<taskId>` = `{from, to, value, priority?}` (see begun-moves.ts). */
  get movesPrefix(): string {
    return `${this.prefix}move/`;
  }
  move(taskId: string): string {
    return this.leafKey("task id", this.movesPrefix, taskId);
  }
  /** Task id of a move record's key, or undefined when the key is not one. */
  parseMove(key: string): string | undefined {
    return this.leaf(key, this.movesPrefix);
  }

  /** Prefix of the leader's failure records: `/R/failure/<taskId>` (no lease: kept until reset or a payload change). */
  get failuresPrefix(): string {
    return `${this.prefix}failure/`;
  }
  failure(taskId: string): string {
    return this.leafKey("task id", this.failuresPrefix, taskId);
  }
  parseFailure(key: string): string | undefined {
    return this.leaf(key, this.failuresPrefix);
  }

  get electionPrefix(): string {
    return `${this.prefix}election`;
  }
  /** A master's campaign key, as etcd's Go election lays it out: `<electionPrefix>/<lease id in hex>`. */
  electionCandidate(leaseId: string): string {
    return `${this.electionPrefix}/${BigInt(leaseId).toString(16)}`;
  }
  /** Prefix of every campaign key in the Go layout (`electionCandidate`); the oldest one is the leader. */
  get electionCandidatesPrefix(): string {
    return `${this.electionPrefix}/`;
  }
  get barrierPrefix(): string {
    return `${this.prefix}barrier/`;
  }
  get barrierLeft(): string {
    return `${this.prefix}worker_barrier_left`;
  }
  get plan(): string {
    return `${this.prefix}plan`;
  }
  /** The leader's freshness mark: each schedule writes it (fenced), then plans once its view has seen that write. */
  get viewMark(): string {
    return `${this.prefix}view-mark`;
  }
  /** The freshness mark's twin, written with it, in the view's other watched range (before the controls' keys). */
  get controlsMark(): string {
    return `${this.prefix}controls-mark`;
  }
  /** Slot i of the workers stepped aside for an unsteady lease (i < half the workers), under that worker's lease. */
  unsteadySlot(index: number): string {
    return `${this.prefix}unsteady/${index}`;
  }

  /** Prefix of the operator's cordon and drain records (no lease: they survive restarts until uncordon). */
  get cordonsPrefix(): string {
    return `${this.prefix}cordon/`;
  }
  cordon(worker: string): string {
    return this.leafKey("worker name", this.cordonsPrefix, worker);
  }
  parseCordon(key: string): string | undefined {
    return this.leaf(key, this.cordonsPrefix);
  }

  /** Prefix of the marks a worker writes under its own lease while it drains itself (SIGTERM). */
  get drainingPrefix(): string {
    return `${this.prefix}draining/`;
  }
  draining(worker: string): string {
    return this.leafKey("worker name", this.drainingPrefix, worker);
  }
  parseDraining(key: string): string | undefined {
    return this.leaf(key, this.drainingPrefix);
  }

  /** Prefix of the holds on a crashed worker's tasks (`--reassign-delay`; no lease: they survive a leader change). */
  get heldPrefix(): string {
    return `${this.prefix}held/`;
  }
  held(worker: string): string {
    return this.leafKey("worker name", this.heldPrefix, worker);
  }
  parseHeld(key: string): string | undefined {
    return this.leaf(key, this.heldPrefix);
  }

  /** Prefix of the marks a worker leaves when it stops on purpose (no lease: read after its lease is gone). */
  get leftPrefix(): string {
    return `${this.prefix}left/`;
  }
  left(worker: string): string {
    return this.leafKey("worker name", this.leftPrefix, worker);
  }
  parseLeft(key: string): string | undefined {
    return this.leaf(key, this.leftPrefix);
  }

  /** Present while schedules are paused (`escheduler pause`). */
  get paused(): string {
    return `${this.prefix}paused`;
  }

  /** Prefix of `escheduler schedule` requests, answered by the leader. */
  get requestsPrefix(): string {
    return `${this.prefix}request/`;
  }
  request(id: string): string {
    return this.leafKey("request id", this.requestsPrefix, id);
  }
  parseRequest(key: string): string | undefined {
    return this.leaf(key, this.requestsPrefix);
  }

  /** Prefix of the operator's pins: `/R/pin/<taskId>` = the worker the task is kept on while eligible (no lease). */
  get pinsPrefix(): string {
    return `${this.prefix}pin/`;
  }
  pin(taskId: string): string {
    return this.leafKey("task id", this.pinsPrefix, taskId);
  }
  parsePin(key: string): string | undefined {
    return this.leaf(key, this.pinsPrefix);
  }

  /** Prefix of the audit trail: one record per operator action, keys sort in time order. */
  get auditPrefix(): string {
    return `${this.prefix}audit/`;
  }
  /** An audit record's key: the time in ms zero-padded to 16 digits, then a random suffix against collisions. */
  audit(atMs: number, suffix: string): string {
    if (!Number.isSafeInteger(atMs) || atMs < 0 || !/^[0-9a-f]{1,16}$/.test(suffix)) {
      throw new EschedulerError("ERR_BAD_NAME", `invalid audit key ${JSON.stringify(`${atMs}-${suffix}`)}`);
    }
    return `${this.auditPrefix}${String(atMs).padStart(HISTORY_DIGITS, "0")}-${suffix}`;
  }
  /** The time (ms) of an audit key, or undefined when the key is not one. */
  parseAudit(key: string): number | undefined {
    const leaf = this.leaf(key, this.auditPrefix);
    const match = leaf === undefined ? null : /^([0-9]{16})-[0-9a-f]{1,16}$/.exec(leaf);
    return match ? Number(match[1]) : undefined;
  }

  /** Prefix of the schedule history; keys sort by the revision they were written after. */
  get historyPrefix(): string {
    return `${this.prefix}history/`;
  }
  /** A history record's key: the revision zero-padded to 16 digits, so the keys sort in time order. */
  history(revision: number): string {
    if (!Number.isSafeInteger(revision) || revision < 0 || revision >= 1e16) {
      throw new EschedulerError("ERR_BAD_NAME", `invalid history revision ${JSON.stringify(revision)}`);
    }
    return this.historyPrefix + String(revision).padStart(HISTORY_DIGITS, "0");
  }
  /** The smallest key range holding every 16-digit history key; other keys in it fail `parseHistory`. */
  get historyRange(): { key: Buffer; range_end: Buffer } {
    return {
      key: Buffer.from(this.historyPrefix + "0".repeat(HISTORY_DIGITS)),
      range_end: Buffer.from(`${this.historyPrefix}${"9".repeat(HISTORY_DIGITS)}\u0000`),
    };
  }
  /** The revision of a history key, or undefined when the key is not one. */
  parseHistory(key: string): number | undefined {
    const leaf = this.leaf(key, this.historyPrefix);
    return leaf !== undefined && HISTORY_LEAF.test(leaf) ? Number(leaf) : undefined;
  }

  /** `prefix` + `name`, once `name` is valid for what it names. */
  private leafKey(kind: NameKind, prefix: string, name: string): string {
    assertValidName(kind, name);
    return prefix + name;
  }

  private leaf(key: string, prefix: string): string | undefined {
    if (!key.startsWith(prefix)) return undefined;
    const rest = key.slice(prefix.length);
    return nameProblem(rest) ? undefined : rest;
  }

  private pair(key: string, prefix: string): TaskKeyParts | undefined {
    if (!key.startsWith(prefix)) return undefined;
    const rest = key.slice(prefix.length);
    const slash = rest.indexOf("/");
    if (slash < 0) return undefined;
    const worker = rest.slice(0, slash);
    const taskId = rest.slice(slash + 1);
    if (nameProblem(worker) || nameProblem(taskId)) return undefined;
    return { worker, taskId };
  }
}

/** Keys of one double barrier under `prefix` (e.g. `KeyLayout.barrierPrefix`): a waiter key per participant and the ready flag. */
export interface DoubleBarrierKeys {
  prefix: string;
  waitersPrefix: string;
  waiter(name: string): string;
  parseWaiter(key: string): string | undefined;
  ready: string;
}

export function doubleBarrierKeys(barrierPrefix: string): DoubleBarrierKeys {
  const prefix = barrierPrefix.endsWith("/") ? barrierPrefix : `${barrierPrefix}/`;
  const waitersPrefix = `${prefix}waiters/`;
  return {
    prefix,
    waitersPrefix,
    waiter(name) {
      const problem = nameProblem(name);
      if (problem) {
        throw new EschedulerError(
          "ERR_BAD_NAME",
          `invalid participant name ${JSON.stringify(name)}: ${problem}`,
        );
      }
      return waitersPrefix + name;
    },
    parseWaiter(key) {
      if (!key.startsWith(waitersPrefix)) return undefined;
      const name = key.slice(waitersPrefix.length);
      return nameProblem(name) ? undefined : name;
    },
    ready: `${prefix}ready`,
  };
}

export function keyLayout(root: string): KeyLayout {
  return new KeyLayout(root);
}

/** The exclusive end of the key range that starts with `prefix` (etcd's prefix range_end). */
export function prefixRangeEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i] < 0xff) {
      end[i]++;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
