/** One line of the benchmark report: a figure, and where one exists, its baseline from the same run. */
export interface BenchRow {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  /** The target, in words (e.g. "≤ 2× baseline", "< 1000 ms"). */
  target?: string;
  /** Whether the figure meets its target (undefined when there is none). */
  met?: boolean;
}

export function printReport(title: string, rows: BenchRow[]): void {
  const table = rows.map((row) => ({
    figure: row.name,
    value: `${format(row.value)} ${row.unit}`,
    baseline: row.baseline ? `${format(row.baseline.value)} ${row.unit} (${row.baseline.name})` : "",
    ratio: row.baseline && row.baseline.value > 0 ? `${(row.value / row.baseline.value).toFixed(2)}×` : "",
    target: row.target ?? "",
    met: row.met === undefined ? "" : row.met ? "yes" : "NO",
  }));
  console.log(`\n${title}`);
  console.table(table);
}

function format(value: number): string {
  return value >= 100 ? value.toFixed(0) : value.toFixed(value >= 10 ? 1 : 2);
}
