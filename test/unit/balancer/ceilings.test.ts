import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { allocateCeilings, type CeilingProblem } from "../../../src/balancer/ceilings.js";
import { runs } from "./support.js";

const problems: fc.Arbitrary<CeilingProblem> = fc
  .integer({ min: 2, max: 40 })
  .chain((columns) =>
    fc.record({
      columns: fc.constant(columns),
      rows: fc.array(
        fc.record({
          remainder: fc.integer({ min: 1, max: columns - 1 }),
          beneficial: fc.uniqueArray(fc.nat(columns - 1), { maxLength: columns }),
        }),
        { minLength: 1, maxLength: 12 },
      ),
      tight: fc.uniqueArray(fc.nat(columns - 1), { maxLength: columns }),
    }),
  )
  .map(({ columns, rows, tight }) => {
    const total = rows.reduce((sum, row) => sum + row.remainder, 0);
    const k = Math.floor(total / columns);
    const m = total - k * columns;
    const roomForExtra = new Uint8Array(columns).fill(1);
    for (const column of tight.slice(0, columns - m)) roomForExtra[column] = 0;
    return {
      columns,
      remainder: rows.map((row) => row.remainder),
      beneficial: rows.map((row) => row.beneficial),
      preference: Int32Array.from({ length: columns }, (_, i) => (i * 7) % columns).filter(
        (c, i, all) => all.indexOf(c) === i,
      ),
      k,
      m,
      roomForExtra,
    };
  })
  .filter((problem) => problem.preference.length === problem.columns);

function expectValid(problem: CeilingProblem, chosen: number[][]): number {
  const perColumn = new Array(problem.columns).fill(0);
  let missed = 0;
  chosen.forEach((columns, row) => {
    expect(new Set(columns).size).toBe(problem.remainder[row]);
    for (const column of columns) perColumn[column]++;
    missed += columns.filter((column) => !problem.beneficial[row].includes(column)).length;
  });
  for (let column = 0; column < problem.columns; column++) {
    expect(perColumn[column] - problem.k).toBeGreaterThanOrEqual(0);
    expect(perColumn[column] - problem.k).toBeLessThanOrEqual(problem.roomForExtra[column]);
  }
  expect(perColumn.filter((count) => count === problem.k + 1)).toHaveLength(problem.m);
  return missed;
}

/** Problems where rows may not use some columns and each column's share differs (a group's constrained tasks). */
const blockedProblems: fc.Arbitrary<CeilingProblem> = problems.chain((problem) =>
  fc
    .record({
      blocked: fc.array(fc.uniqueArray(fc.nat(problem.columns - 1), { maxLength: problem.columns }), {
        minLength: problem.remainder.length,
        maxLength: problem.remainder.length,
      }),
      totals: fc.array(fc.nat(3), { minLength: problem.columns, maxLength: problem.columns }),
    })
    .map(({ blocked, totals }) => {
      // A row keeps at least its remainder of columns.
      const rows = blocked.map((list, row) => list.slice(0, problem.columns - problem.remainder[row]));
      const ceilings = problem.remainder.reduce((sum, r) => sum + r, 0);
      let level = Math.min(...totals);
      const raise = (to: number) => totals.reduce((sum, t) => sum + Math.max(0, to - t), 0);
      while (raise(level + 1) <= ceilings) level++;
      return {
        ...problem,
        beneficial: problem.beneficial.map((list, row) => list.filter((c) => !rows[row].includes(c))),
        blocked: rows,
        lower: Int32Array.from(totals, (t) => Math.max(0, level - t)),
        m: ceilings - raise(level),
        roomForExtra: Uint8Array.from(totals, (t) => (t <= level ? 1 : 0)),
        overflow: new Int32Array(problem.columns).fill(problem.remainder.length),
      };
    }),
);

/** Ceilings beyond the columns' shares × 2^20 plus the cells that save no move; rows use only allowed columns. */
function blockedCost(problem: CeilingProblem, chosen: number[][]): number {
  const lower = problem.lower as Int32Array;
  const perColumn = new Array(problem.columns).fill(0);
  let missed = 0;
  chosen.forEach((columns, row) => {
    expect(new Set(columns).size).toBe(problem.remainder[row]);
    for (const column of columns) {
      expect(problem.blocked?.[row]).not.toContain(column);
      perColumn[column]++;
      if (!problem.beneficial[row].includes(column)) missed++;
    }
  });
  let free = 0;
  let extra = 0;
  perColumn.forEach((count, c) => {
    free += Math.min(count, lower[c]);
    if (count > lower[c] && problem.roomForExtra[c]) extra++;
  });
  const total = problem.remainder.reduce((sum, r) => sum + r, 0);
  return (total - free - Math.min(problem.m, extra)) * 2 ** 20 + missed;
}

describe("ceiling allocation", () => {
  it("with blocked columns and per-column shares, the windowed network is as good as the full one", () => {
    fc.assert(
      fc.property(blockedProblems, (problem) => {
        const full = blockedCost(problem, allocateCeilings(problem));
        expect(blockedCost(problem, allocateCeilings(problem, 0, 1))).toBe(full);
      }),
      runs(300),
    );
  });

  it("gives every row its remainder on distinct columns and every column k or k+1 ceilings", () => {
    fc.assert(
      fc.property(problems, (problem) => {
        expectValid(problem, allocateCeilings(problem));
      }),
      runs(300),
    );
  });

  it("the windowed network used for many groups, priced and widened, is as good as the full one", () => {
    fc.assert(
      fc.property(problems, (problem) => {
        const full = expectValid(problem, allocateCeilings(problem));
        const windowed = expectValid(problem, allocateCeilings(problem, 0, 1));
        expect(windowed).toBe(full);
      }),
      runs(300),
    );
  });
});
