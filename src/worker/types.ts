import type { Etcd3 } from "etcd3";
import type { EschedulerError } from "../errors.js";
import type { EtcdConnectionConfig, Logger, Task } from "../node/index.js";
import type { ResyncEvent } from "../watcher/index.js";
import type { TaskHandler } from "./handler.js";
import type { RetryOptions, TaskRunState, TaskStateChange } from "./task-runner.js";

/** The public shapes of a `Worker`: its options, statuses, tasks and events. */

export type WorkerStatus = "new" | "registered" | "in_barrier" | "left_barrier" | "lost" | "dead";

export interface WorkerOptions extends Partial<EtcdConnectionConfig> {
  /** An etcd client to use (not closed by the worker); otherwise one is made from `etcd` and the TLS/auth fields. */
  client?: Etcd3;
  /** Key prefix of the cluster; default "escheduler". */
  root?: string;
  /** Default `<ip>-<pid>`. */
  name?: string;
  /** Lease time-to-live; default 10 s. */
  ttlMs?: number;
  /** Workers the first gathering waits for; 0 skips the barrier. */
  expectedWorkers?: number;
  /** Most workers registered at once; 0 for no cap. */
  maxWorkers?: number;
  capacity?: number;
  /** Labels that task selectors and spreads match (Kubernetes label syntax), stored in the registration. */
  labels?: Readonly<Record<string, string>>;
  /** Rollout generation, stored in the registration; default a hash of the handler module's content. */
  generation?: string;
  /**
   * How long one task's stop may take before it is reported as overrunning (logged, `stopOverrun`);
   * default 30 s. The task's status, and so the lease, stays until its stop returns.
   */
  stopTimeoutMs?: number;
  /** Handler module path or value; without one, tasks are only delivered (`taskChanges()`), not run. */
  handler?: string | TaskHandler;
  logger?: Logger;
  version?: string;
  /** Backoff of a failing task start; default 1 s doubling to 1 min. */
  startRetry?: RetryOptions;
  /** Lease loss is assumed when keep-alives are unconfirmed for `ttl - margin`; default 30% of the TTL. */
  leaseMarginMs?: number;
}

/** A task the worker holds, and how it is doing. */
export interface WorkerTask {
  id: string;
  /** Undefined when the stored value is not a valid task (its state is then `failed`). */
  task?: Task;
  state: TaskRunState;
  attempt: number;
  error?: string;
}

/** Why a task is no longer the worker's: the master took it away, the lease was lost, or the worker stops. */
export type RemovalReason = "unassigned" | "fenced" | "stopping";

export type TaskChange =
  | { type: "added"; task: Task }
  | { type: "changed"; task: Task; previous?: Task }
  | { type: "removed"; taskId: string; previous?: Task; reason: RemovalReason };

export interface WorkerEvents {
  status: [WorkerStatus, WorkerStatus];
  added: [Task];
  changed: [Task, Task | undefined];
  removed: [string, RemovalReason];
  /**
   * The lease is gone, or the registration was deleted or taken by another lease (ERR_REGISTRATION_LOST):
   * every task is being stopped; the worker registers anew (waiting while another process holds the name).
   */
  lost: [Error];
  /**
   * Keep-alives are overdue (`ttl - margin`): every task is being stopped, as for a loss, but the
   * registration stays while the lease may still be alive. Followed by `resumed` or `lost`.
   */
  suspended: [Error];
  /** A keep-alive was confirmed in time after `suspended`: the assignment is kept and its tasks start again. */
  resumed: [];
  /** Readiness flipped, judged as `readiness()` and `escheduler probe --worker` judge it (read from etcd only while someone listens). */
  ready: [boolean];
  taskState: [TaskStateChange];
  resync: [ResyncEvent];
  /** After a lease loss, once every task has stopped. */
  leaseLost: [{ reason: Error; tasks: number; stoppedInMs: number }];
  /** Stops still running after the stop timeout: their statuses and the lease stay until they return. */
  stopOverrun: [{ tasks: string[]; stopTimeoutMs: number }];
  /** Registration refused for now (worker cap, or the name still held by an old lease). */
  registrationWaiting: [EschedulerError];
  /** etcd confirmed a keep-alive of the worker's lease `roundTripMs` after it was sent. */
  keepalive: [{ roundTripMs: number }];
}
