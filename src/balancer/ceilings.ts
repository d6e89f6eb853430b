import { KeyedHeap } from "./heap.js";

/**
 * Which workers get one task above the floor ("a ceiling") in each group, so that per group and in
 * total the counts differ by at most one and as few tasks as possible move.
 *
 * Rows are groups with a remainder r > 0, columns are workers. A row places exactly r ceilings on r
 * distinct columns; every column takes k or k+1 ceilings in all, and exactly m columns take k+1 (only
 * those with `roomForExtra`). A ceiling on a column that holds more than the floor of that row saves
 * one move, so minimal movement is a min-cost flow with cost 0 on those "beneficial" cells and 1
 * elsewhere, solved exactly (primal-dual: Dijkstra on reduced costs, then a Dinic blocking flow on the
 * zero-cost arcs; a handful of phases). Up to DENSE_CELL_BUDGET cells every row may use every column.
 * Beyond that a row starts with its beneficial columns plus a window of the preference order a little
 * wider than its remainder, the windows laid one after another around the order (as a fresh plan lays
 * remainders); after solving, every left-out cell is priced against the final potentials and any that
 * could lower the cost is added and the flow solved again, so the answer is exact either way.
 */
export interface CeilingProblem {
  columns: number;
  remainder: number[];
  /** Per row, the columns where a ceiling saves a move. */
  beneficial: number[][];
  /** Columns from most to least preferred, the tie-break between equally good plans. */
  preference: Int32Array;
  k: number;
  m: number;
  roomForExtra: Uint8Array;
  /** Per column, the ceilings it takes before any takes one more (k everywhere when absent). */
  lower?: Int32Array;
  /** Per row, the columns that may not take its ceiling (a group's constrained tasks hold them above its level). */
  blocked?: number[][];
  /**
   * Per column, how many ceilings it may take beyond `lower` and its extra one, each at a cost above
   * any number of moves: with `blocked` rows the columns' totals cannot always be met exactly.
   */
  overflow?: Int32Array;
}

/** The cost of one ceiling beyond a column's share: more than every move a plan can save. */
const OVERFLOW_COST = 1 << 20;

export const DENSE_CELL_BUDGET = 250_000;

/** Per row, the columns that get a ceiling; the optional arguments exist for tests. */
export function allocateCeilings(
  problem: CeilingProblem,
  denseCellBudget = DENSE_CELL_BUDGET,
  firstSlack = 8,
): number[][] {
  const { columns, remainder } = problem;
  if (remainder.length === 0) return [];
  if (remainder.length * columns <= denseCellBudget) {
    // Complete but for `blocked` rows on workers without room: those tasks are left to the caller.
    return solve(problem, windows(problem, columns), true)!.chosen;
  }
  let slack = firstSlack;
  let cells = windows(problem, slack);
  for (;;) {
    const solved = solve(problem, cells, slack === columns);
    if (!solved) {
      slack = Math.min(columns, 4 * slack + 1);
      cells = windows(problem, slack);
      continue;
    }
    const cheaper = underpricedCells(problem, cells, solved.potential);
    if (cheaper.every((extra) => extra.length === 0)) return solved.chosen;
    cells = cells.map((list, row) => [...list, ...cheaper[row]]);
  }
}

/** The cost of a ceiling on (row, column): 0 where it saves a move, else 1. */
function cellCost(problem: CeilingProblem): (row: number, column: number) => number {
  const saves = problem.beneficial.map((list) => new Set(list));
  return (row, column) => (saves[row].has(column) ? 0 : 1);
}

/** Per row: a window of the preference order `slack` wider than its remainder, then its beneficial columns. */
function windows(problem: CeilingProblem, slack: number): number[][] {
  const { columns, preference } = problem;
  const seen = new Int32Array(columns).fill(-1);
  let start = 0;
  return problem.remainder.map((r, row) => {
    const width = Math.min(columns, r + slack);
    const from = width === columns ? 0 : start;
    start = (start + r) % columns;
    const cells: number[] = [];
    for (const column of problem.blocked?.[row] ?? []) seen[column] = row;
    const add = (column: number) => {
      if (seen[column] === row) return;
      seen[column] = row;
      cells.push(column);
    };
    for (let i = 0; i < width; i++) add(preference[(from + i) % columns]);
    for (const column of problem.beneficial[row]) add(column);
    return cells;
  });
}

/** Left-out cells whose reduced cost is negative: the current answer might not be optimal with them. */
function underpricedCells(problem: CeilingProblem, cells: number[][], potential: Int32Array): number[][] {
  const { columns } = problem;
  const cost = cellCost(problem);
  const seen = new Int32Array(columns).fill(-1);
  const firstColumn = cells.length + 1;
  return cells.map((list, row) => {
    for (const column of list) seen[column] = row;
    for (const column of problem.blocked?.[row] ?? []) seen[column] = row;
    const extra: number[] = [];
    for (let column = 0; column < columns; column++) {
      if (seen[column] === row) continue;
      if (cost(row, column) + potential[row + 1] - potential[firstColumn + column] < 0) extra.push(column);
    }
    return extra;
  });
}

/** Min-cost flow over the given cells; undefined when they cannot carry every ceiling (unless `partial`). */
function solve(
  problem: CeilingProblem,
  cells: number[][],
  partial = false,
): { chosen: number[][]; potential: Int32Array } | undefined {
  const { columns, remainder, k, m } = problem;
  const rows = remainder.length;
  const source = 0;
  const firstColumn = rows + 1;
  const extra = rows + columns + 1;
  const sink = rows + columns + 2;
  const cellCount = cells.reduce((sum, list) => sum + list.length, 0);
  const net = new Network(sink + 1, rows + cellCount + 3 * columns + 1);
  const cost = cellCost(problem);
  for (let row = 0; row < rows; row++) net.addEdge(source, row + 1, remainder[row], 0);
  const rowArcs: number[] = [];
  cells.forEach((list, row) => {
    rowArcs.push(net.edgeCount);
    for (const column of list) net.addEdge(row + 1, firstColumn + column, 1, cost(row, column));
  });
  rowArcs.push(net.edgeCount);
  const { lower, overflow } = problem;
  for (let column = 0; column < columns; column++) {
    const share = lower ? lower[column] : k;
    if (share > 0) net.addEdge(firstColumn + column, sink, share, 0);
    if (m > 0 && problem.roomForExtra[column]) net.addEdge(firstColumn + column, extra, 1, 0);
    if (overflow && overflow[column] > 0)
      net.addEdge(firstColumn + column, sink, overflow[column], OVERFLOW_COST);
  }
  if (m > 0) net.addEdge(extra, sink, m, 0);
  const total = remainder.reduce((sum, r) => sum + r, 0);
  if (net.minCostFlow(source, sink, total) !== total && !partial) return undefined;
  const chosen = remainder.map((_, row) => {
    const list: number[] = [];
    for (let e = rowArcs[row]; e < rowArcs[row + 1]; e++)
      if (net.cap[2 * e] === 0) list.push(net.to[2 * e] - firstColumn);
    return list;
  });
  return { chosen, potential: net.potential };
}

/** A flow network in arrays: arc 2e is edge e, arc 2e+1 its residual twin. */
class Network {
  readonly to: Int32Array;
  readonly cap: Int32Array;
  readonly cost: Int32Array;
  private readonly from: Int32Array;
  edgeCount = 0;
  /** Node potentials after minCostFlow: every residual arc has a non-negative reduced cost. */
  readonly potential: Int32Array;
  private start = new Int32Array(0);
  private arcs = new Int32Array(0);

  constructor(
    private readonly nodes: number,
    maxEdges: number,
  ) {
    this.to = new Int32Array(2 * maxEdges);
    this.cap = new Int32Array(2 * maxEdges);
    this.cost = new Int32Array(2 * maxEdges);
    this.from = new Int32Array(2 * maxEdges);
    this.potential = new Int32Array(nodes);
  }

  addEdge(from: number, to: number, capacity: number, cost: number): void {
    const a = 2 * this.edgeCount++;
    this.from[a] = from;
    this.to[a] = to;
    this.cap[a] = capacity;
    this.cost[a] = cost;
    this.from[a + 1] = to;
    this.to[a + 1] = from;
    this.cost[a + 1] = -cost;
  }

  /** Sends up to `limit` units at least cost; returns the amount sent. */
  minCostFlow(source: number, sink: number, limit: number): number {
    this.buildAdjacency();
    const potential = this.potential;
    let sent = 0;
    while (sent < limit) {
      const distance = this.shortestDistances(source, potential);
      const reach = distance[sink];
      if (reach === INFINITE) break;
      for (let v = 0; v < this.nodes; v++) potential[v] += Math.min(distance[v], reach);
      sent += this.blockingFlows(source, sink, potential, limit - sent);
    }
    return sent;
  }

  private buildAdjacency(): void {
    const arcCount = 2 * this.edgeCount;
    this.start = new Int32Array(this.nodes + 1);
    for (let a = 0; a < arcCount; a++) this.start[this.from[a] + 1]++;
    for (let v = 0; v < this.nodes; v++) this.start[v + 1] += this.start[v];
    const fill = this.start.slice(0, this.nodes);
    this.arcs = new Int32Array(arcCount);
    for (let a = 0; a < arcCount; a++) this.arcs[fill[this.from[a]]++] = a;
  }

  private reducedCost(arc: number, potential: Int32Array): number {
    return this.cost[arc] + potential[this.from[arc]] - potential[this.to[arc]];
  }

  /** Dijkstra over residual arcs with reduced costs (all ≥ 0). */
  private shortestDistances(source: number, potential: Int32Array): Int32Array {
    const distance = new Int32Array(this.nodes).fill(INFINITE);
    const heap = new KeyedHeap();
    distance[source] = 0;
    heap.push(0, source);
    while (heap.size > 0) {
      const d = heap.topKey();
      const u = heap.pop();
      if (d > distance[u]) continue;
      for (let i = this.start[u]; i < this.start[u + 1]; i++) {
        const a = this.arcs[i];
        if (this.cap[a] === 0) continue;
        const v = this.to[a];
        const next = d + this.reducedCost(a, potential);
        if (next < distance[v]) {
          distance[v] = next;
          heap.push(next, v);
        }
      }
    }
    return distance;
  }

  /** Dinic on the arcs of reduced cost 0: all shortest augmenting paths of this phase. */
  private blockingFlows(source: number, sink: number, potential: Int32Array, limit: number): number {
    const level = new Int32Array(this.nodes);
    const next = new Int32Array(this.nodes);
    const queue = new Int32Array(this.nodes);
    const admissible = (a: number) => this.cap[a] > 0 && this.reducedCost(a, potential) === 0;
    const push = (u: number, amount: number): number => {
      if (u === sink) return amount;
      for (; next[u] < this.start[u + 1]; next[u]++) {
        const a = this.arcs[next[u]];
        const v = this.to[a];
        if (level[v] !== level[u] + 1 || !admissible(a)) continue;
        const pushed = push(v, Math.min(amount, this.cap[a]));
        if (pushed > 0) {
          this.cap[a] -= pushed;
          this.cap[a ^ 1] += pushed;
          return pushed;
        }
      }
      return 0;
    };
    let sent = 0;
    while (sent < limit) {
      level.fill(-1);
      level[source] = 0;
      let head = 0;
      let tail = 0;
      queue[tail++] = source;
      while (head < tail) {
        const u = queue[head++];
        for (let i = this.start[u]; i < this.start[u + 1]; i++) {
          const a = this.arcs[i];
          const v = this.to[a];
          if (level[v] < 0 && admissible(a)) {
            level[v] = level[u] + 1;
            queue[tail++] = v;
          }
        }
      }
      if (level[sink] < 0) break;
      next.set(this.start.subarray(0, this.nodes));
      for (let pushed = push(source, limit - sent); pushed > 0; pushed = push(source, limit - sent)) {
        sent += pushed;
        if (sent === limit) break;
      }
    }
    return sent;
  }
}

const INFINITE = 0x3fffffff;
