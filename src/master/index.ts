export { campaign, type Leadership } from "./campaign.js";
export type { DeposedEvent, ElectedEvent, MasterEvents, PausedEvent, ScheduleFailedEvent } from "./events.js";
export { FencedWriter, leaderFence } from "./fencing.js";
export { type Generator, type GeneratorContext, loadGenerator } from "./generator.js";
export type { HandoffWaitEvent } from "./handoff.js";
export { Master, type MasterOptions } from "./master.js";
export { type MaxMoving, maxMovingProblem, parseMaxMoving } from "./pacing.js";
export type { ScheduleResult } from "./schedule.js";
export { MAX_TASK_VALUE_BYTES, validateTasks } from "./validation.js";
