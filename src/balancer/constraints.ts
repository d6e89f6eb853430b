import { PlanInputError } from "./errors.js";
import { antiKeyProblem, formatSelector, matches, selectorProblem, spreadProblem } from "./labels.js";
import type { Problem } from "./model.js";
import type { Selector, Spread, Task } from "./types.js";

/** The workers a class of tasks may run on: those matching a selector (and holding a spread's label). */
export interface EligibilityClass {
  /** What the class asks for, as the reason "no worker matches …" names it. */
  text: string;
  eligible: Uint8Array;
  /** The eligible worker numbers, ascending. */
  workers: number[];
  /** Workers the class's tasks failed on (`exclude`), by name; absent when none. */
  failedOn?: string[];
}

/**
 * A cell the constrained tasks are balanced in: the tasks of one group and one eligibility class that
 * carry one spread (or none). With a spread, its domain is the label's values on the eligible workers.
 */
export interface TaskSet {
  cls: number;
  label?: string;
  maxSkew: number;
  hard: boolean;
  /** The label's values (one "" value without a spread), ascending. */
  values: string[];
  /** Per value, its eligible workers. */
  valueWorkers: number[][];
  /** Per worker, its value number, or -1 (not eligible). */
  valueOfWorker: Int32Array;
}

/** The constraints of a plan, indexed: which tasks are constrained and the classes, sets and antiKeys. */
export interface Constraints {
  /** Per task: 1 when it has a selector, a spread or an antiKey, or shares a key with such a task. */
  constrained: Uint8Array;
  /** Per task: its eligibility class, or -1 for any worker. */
  cls: Int32Array;
  classes: EligibilityClass[];
  /** Per task without a key: its set, or -1 when unconstrained. */
  set: Int32Array;
  sets: TaskSet[];
  /** Per task: its antiKey number, or -1. */
  anti: Int32Array;
  antiNames: string[];
  /** Per constrained key: the classes of its tasks (their intersection is where it may go). */
  keyClasses: Map<number, number[]>;
}

const culprit = (task: Task) => `task ${JSON.stringify(task.id)}`;

/** A selector's identity: its terms in key order (JSON only for the rarer list and object terms). */
function canonical(selector: Selector): string {
  const keys = Object.keys(selector);
  if (keys.length > 1) keys.sort();
  let text = "";
  for (const key of keys) {
    const term = selector[key];
    text += `${key}\u0001${typeof term === "string" ? term : JSON.stringify(term)}\u0002`;
  }
  return text;
}

/** The key of a selector whose only term is one value (`{ zone: "eu-1a" }`), else undefined. */
function singleValueKey(selector: Selector): string | undefined {
  let found: string | undefined;
  for (const key in selector) {
    if (found !== undefined || !Object.hasOwn(selector, key) || typeof selector[key] !== "string")
      return undefined;
    found = key;
  }
  return found;
}

/** Whether two valid spreads are the same (as their signatures, without building them). */
const sameSpread = (a: Spread, b: Spread) =>
  a.label === b.label && (a.maxSkew ?? 1) === (b.maxSkew ?? 1) && (a.hard === true) === (b.hard === true);

/**
 * Checks the constraint fields of every task and indexes them; undefined when no task has any (the
 * planner then takes its unconstrained path). Throws PlanInputError naming the first culprit.
 */
export function indexConstraints(problem: Problem, tasks: readonly Task[]): Constraints | undefined {
  const n = problem.ids.length;
  let any = false;
  for (let t = 0; t < n; t++) {
    const task = tasks[t];
    if (problem.avoid?.has(t)) any = true;
    if (task.selector === undefined && task.spread === undefined && task.antiKey === undefined) continue;
    any = true;
    const problemText =
      selectorProblem(task.selector) ?? spreadProblem(task.spread) ?? antiKeyProblem(task.antiKey);
    if (problemText) throw new PlanInputError(culprit(task), problemText);
    if (task.spread !== undefined && task.key !== undefined) {
      throw new PlanInputError(
        culprit(task),
        "spread does not apply to a task with a key (its key decides its worker)",
      );
    }
  }
  if (!any) return undefined;
  const classIndex = new Map<string, number>();
  const classes: EligibilityClass[] = [];
  const classFor = (
    selector: Selector | undefined,
    spreadLabel: string | undefined,
    avoid?: readonly number[],
  ): number => {
    const signature = `${selector ? canonical(selector) : ""}\u0000${spreadLabel ?? ""}\u0000${avoid?.join(",") ?? ""}`;
    const known = classIndex.get(signature);
    if (known !== undefined) return known;
    const eligible = new Uint8Array(problem.workers.length);
    const workers: number[] = [];
    problem.labels.forEach((labels, w) => {
      if (avoid?.includes(w)) return;
      if (selector && !matches(selector, labels)) return;
      if (spreadLabel !== undefined && (labels === undefined || !Object.hasOwn(labels, spreadLabel))) return;
      eligible[w] = 1;
      workers.push(w);
    });
    const asked = selector && Object.keys(selector).length > 0 ? formatSelector(selector) : undefined;
    const text =
      asked && spreadLabel !== undefined
        ? `${asked} with label ${spreadLabel}`
        : (asked ?? (spreadLabel !== undefined ? `label ${spreadLabel}` : "any"));
    const failedOn = avoid?.map((w) => problem.workers[w]);
    classes.push(failedOn ? { text, eligible, workers, failedOn } : { text, eligible, workers });
    classIndex.set(signature, classes.length - 1);
    return classes.length - 1;
  };
  // Tasks of one selector of a single value (the common case) find their class without a signature.
  const byValue = new Map<string, Map<string, Map<string, number>>>();
  const classOf = (selector: Selector, spreadLabel: string | undefined): number => {
    const key = singleValueKey(selector);
    if (key === undefined) return classFor(selector, spreadLabel);
    const label = spreadLabel ?? "\u0000"; // never a label key
    let byKey = byValue.get(label);
    if (byKey === undefined) byValue.set(label, (byKey = new Map()));
    let values = byKey.get(key);
    if (values === undefined) byKey.set(key, (values = new Map()));
    const value = selector[key] as string;
    let known = values.get(value);
    if (known === undefined) values.set(value, (known = classFor(selector, spreadLabel)));
    return known;
  };
  const cls = new Int32Array(n).fill(-1);
  const anti = new Int32Array(n).fill(-1);
  const antiIndex = new Map<string, number>();
  const constrained = new Uint8Array(n);
  const groupSpread = new Map<number, Spread>();
  const labelOnly = new Map<string, number>();
  for (let t = 0; t < n; t++) {
    const task = tasks[t];
    const avoid = problem.avoid?.get(t);
    if (avoid !== undefined) {
      // Where it failed is a class of its own: the selector's workers less those.
      constrained[t] = 1;
      if (task.antiKey !== undefined) anti[t] = antiNumber(antiIndex, task.antiKey);
      cls[t] = classFor(task.selector, task.spread?.label, avoid);
      if (task.spread !== undefined) checkGroupSpread(groupSpread, problem.group[t], task);
      continue;
    }
    if (task.selector === undefined && task.spread === undefined && task.antiKey === undefined) continue;
    constrained[t] = 1;
    if (task.antiKey !== undefined) anti[t] = antiNumber(antiIndex, task.antiKey);
    if (task.spread !== undefined) {
      checkGroupSpread(groupSpread, problem.group[t], task);
      if (task.selector === undefined) {
        const cached = labelOnly.get(task.spread.label);
        cls[t] = cached ?? classFor(undefined, task.spread.label);
        if (cached === undefined) labelOnly.set(task.spread.label, cls[t]);
      } else cls[t] = classOf(task.selector, task.spread.label);
    } else if (task.selector !== undefined) cls[t] = classOf(task.selector, undefined);
  }
  const keyClasses = constrainKeys(problem, constrained, cls);
  const { set, sets } = indexSets(problem, tasks, constrained, cls, classes, classFor);
  return { constrained, cls, classes, set, sets, anti, antiNames: [...antiIndex.keys()], keyClasses };
}

function antiNumber(antiIndex: Map<string, number>, antiKey: string): number {
  const known = antiIndex.get(antiKey);
  if (known !== undefined) return known;
  antiIndex.set(antiKey, antiIndex.size);
  return antiIndex.size - 1;
}

/** Throws unless `task`'s spread agrees with the one its group carries (the first seen). */
function checkGroupSpread(groupSpread: Map<number, Spread>, group: number, task: Task): void {
  const spread = task.spread as Spread;
  const agreed = groupSpread.get(group);
  if (agreed === undefined) groupSpread.set(group, spread);
  else if (agreed !== spread && !sameSpread(agreed, spread)) {
    throw new PlanInputError(
      culprit(task),
      "the tasks of one group that carry a spread must carry the same spread",
    );
  }
}

/** Marks every task of a key that has a constrained task as constrained; returns each such key's classes. */
function constrainKeys(problem: Problem, constrained: Uint8Array, cls: Int32Array): Map<number, number[]> {
  const keyClasses = new Map<number, number[]>();
  for (let t = 0; t < problem.ids.length; t++) {
    const k = problem.key[t];
    if (k >= 0 && constrained[t]) keyClasses.set(k, []);
  }
  for (let t = 0; t < problem.ids.length; t++) {
    const k = problem.key[t];
    const list = k >= 0 ? keyClasses.get(k) : undefined;
    if (!list) continue;
    constrained[t] = 1;
    if (cls[t] >= 0 && !list.includes(cls[t])) list.push(cls[t]);
  }
  return keyClasses;
}

function indexSets(
  problem: Problem,
  tasks: readonly Task[],
  constrained: Uint8Array,
  cls: Int32Array,
  classes: EligibilityClass[],
  classFor: (selector: Selector | undefined, spreadLabel: string | undefined) => number,
): { set: Int32Array; sets: TaskSet[] } {
  const set = new Int32Array(problem.ids.length).fill(-1);
  const sets: TaskSet[] = [];
  const setIndex = new Map<number, number>();
  const domains = new Map<number, Pick<TaskSet, "values" | "valueWorkers" | "valueOfWorker">>();
  for (let t = 0; t < problem.ids.length; t++) {
    if (!constrained[t] || problem.key[t] >= 0) continue;
    if (cls[t] < 0) cls[t] = classFor(undefined, undefined);
    const spread = tasks[t].spread;
    // A group carries at most one spread (checked above): group, class and whether it spreads name the set.
    const signature = (problem.group[t] * 2 ** 21 + cls[t]) * 2 + (spread ? 1 : 0);
    const known = setIndex.get(signature);
    if (known !== undefined) {
      set[t] = known;
      continue;
    }
    const domain =
      domains.get(cls[t] * 2 + (spread ? 1 : 0)) ?? domainOf(problem, classes[cls[t]], spread?.label);
    domains.set(cls[t] * 2 + (spread ? 1 : 0), domain);
    const { values, valueWorkers, valueOfWorker } = domain;
    sets.push({
      cls: cls[t],
      label: spread?.label,
      maxSkew: spread ? (spread.maxSkew ?? 1) : Number.POSITIVE_INFINITY,
      hard: spread?.hard === true,
      values,
      valueWorkers,
      valueOfWorker,
    });
    setIndex.set(signature, sets.length - 1);
    set[t] = sets.length - 1;
  }
  return { set, sets };
}

/** The label's values on a class's workers (one "" value without a label), and each worker's value. */
function domainOf(
  problem: Problem,
  cls: EligibilityClass,
  label: string | undefined,
): Pick<TaskSet, "values" | "valueWorkers" | "valueOfWorker"> {
  const valueOf = (w: number) =>
    label === undefined ? "" : (problem.labels[w] as Record<string, string>)[label];
  const values = [...new Set(cls.workers.map(valueOf))].sort();
  const position = new Map(values.map((value, i) => [value, i]));
  const valueWorkers: number[][] = values.map(() => []);
  const valueOfWorker = new Int32Array(problem.workers.length).fill(-1);
  for (const w of cls.workers) {
    const v = position.get(valueOf(w)) as number;
    valueWorkers[v].push(w);
    valueOfWorker[w] = v;
  }
  return { values, valueWorkers, valueOfWorker };
}
