import { KeyedHeap } from "./heap.js";

/**
 * Which workers get one task above the floor ("a ceiling") in each group, so that per group and in
 * total the counts differ by at most one and as few tasks as possible move.
 *
 * Rows are groups with a remainder r > 0, columns are workers. A row places exactly r ceilings on r
 * distinct columns; every column takes k or k+1 ceilings in all, and exactly m columns take k+1 (only
 * those with `roomForExtra`). A ceiling on a column that holds more than the floor of that row saves
 * one move, so minimal movement is a min-cost flow with cost 0 on those "beneficial" cells and 1
 * elsewhere. It is solved exactly (primal-dual: Dijkstra on reduced costs, then a Dinic blocking flow
 * on the zero-cost arcs, a handful of phases) while rows × columns stays within EXACT_CELL_BUDGET;
 * beyond that a Gale–Ryser greedy keeps the balance exact and prefers beneficial cells.
 */
export interface CeilingProblem {
  columns: number;
  remainder: number[];
  /** Per row, the columns where a ceiling saves a move. */
  beneficial: number[][];
  /** Per row, the columns from most to least preferred (ties between equally good plans). */
  preference: (row: number) => ArrayLike<number>;
  k: number;
  m: number;
  roomForExtra: Uint8Array;
}

export const EXACT_CELL_BUDGET = 1_000_000;

/** Per row, the columns that get a ceiling. */
export function allocateCeilings(problem: CeilingProblem): number[][] {
  if (problem.remainder.length === 0) return [];
  return problem.remainder.length * problem.columns <= EXACT_CELL_BUDGET
    ? minCostCeilings(problem)
    : greedyCeilings(problem);
}

function minCostCeilings(problem: CeilingProblem): number[][] {
  const { columns, remainder, k, m } = problem;
  const rows = remainder.length;
  const source = 0;
  const firstColumn = rows + 1;
  const extra = rows + columns + 1;
  const sink = rows + columns + 2;
  const net = new Network(sink + 1, rows + rows * columns + 2 * columns + 1);
  const isBeneficial = new Uint8Array(columns);
  const rowArcs: number[] = [];
  for (let row = 0; row < rows; row++) net.addEdge(source, row + 1, remainder[row], 0);
  for (let row = 0; row < rows; row++) {
    for (const column of problem.beneficial[row]) isBeneficial[column] = 1;
    rowArcs.push(net.edgeCount);
    for (const column of Array.from(problem.preference(row))) {
      net.addEdge(row + 1, firstColumn + column, 1, isBeneficial[column] ? 0 : 1);
    }
    for (const column of problem.beneficial[row]) isBeneficial[column] = 0;
  }
  for (let column = 0; column < columns; column++) {
    if (k > 0) net.addEdge(firstColumn + column, sink, k, 0);
    if (m > 0 && problem.roomForExtra[column]) net.addEdge(firstColumn + column, extra, 1, 0);
  }
  if (m > 0) net.addEdge(extra, sink, m, 0);
  const total = remainder.reduce((sum, r) => sum + r, 0);
  const sent = net.minCostFlow(source, sink, total);
  if (sent !== total) throw new Error(`ceiling allocation infeasible (${sent} of ${total})`);
  return remainder.map((_, row) => {
    const chosen: number[] = [];
    for (let e = rowArcs[row]; e < rowArcs[row] + columns; e++) {
      if (net.cap[2 * e] === 0) chosen.push(net.to[2 * e] - firstColumn);
    }
    return chosen;
  });
}

/** Rows by size, each onto the columns with the most ceilings still owed (beneficial first on ties). */
function greedyCeilings(problem: CeilingProblem): number[][] {
  const { columns, remainder, k, m } = problem;
  const owed = new Int32Array(columns).fill(k);
  const benefitCount = new Int32Array(columns);
  for (const list of problem.beneficial) for (const column of list) benefitCount[column]++;
  const extraCandidates = Array.from({ length: columns }, (_, c) => c).filter((c) => problem.roomForExtra[c]);
  extraCandidates.sort((a, b) => benefitCount[b] - benefitCount[a] || a - b);
  for (const column of extraCandidates.slice(0, m)) owed[column]++;
  const histogram = new Int32Array(k + 2);
  for (let c = 0; c < columns; c++) histogram[owed[c]]++;
  const taken = new Int32Array(columns).fill(-1);
  const result: number[][] = remainder.map(() => []);
  const rowOrder = remainder.map((_, row) => row).sort((a, b) => remainder[b] - remainder[a] || a - b);
  for (const row of rowOrder) {
    let need = remainder[row];
    let threshold = k + 1;
    for (let above = histogram[threshold]; above < need; above += histogram[threshold]) threshold--;
    const take = (column: number) => {
      taken[column] = row;
      result[row].push(column);
      histogram[owed[column]]--;
      histogram[--owed[column]]++;
      need--;
    };
    for (let c = 0; c < columns; c++) if (owed[c] > threshold) take(c);
    for (const c of problem.beneficial[row]) if (need > 0 && taken[c] !== row && owed[c] === threshold) take(c);
    for (const c of Array.from(problem.preference(row))) {
      if (need === 0) break;
      if (taken[c] !== row && owed[c] === threshold) take(c);
    }
  }
  return result;
}

/** A flow network in arrays: arc 2e is edge e, arc 2e+1 its residual twin. */
class Network {
  readonly to: Int32Array;
  readonly cap: Int32Array;
  readonly cost: Int32Array;
  private readonly from: Int32Array;
  edgeCount = 0;
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
    const potential = new Int32Array(this.nodes);
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
