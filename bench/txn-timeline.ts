/**
 * The master client's transactions over time (bench/first-schedule.ts): where the window between the
 * first task key and `/R/plan` went — how many transactions the master had in flight, how long etcd
 * took to answer them, and how long the master took between its last task write's answer and sending
 * `/R/plan` (the schedule's own work after its writes).
 */
import type { Etcd3 } from "etcd3";

interface Entry {
  start: number;
  end?: number;
}

export interface TxnWindow {
  /** The master's transactions sent before `/R/plan` was seen and answered after the first task key. */
  txns: number;
  /** Their latency (sent → answered), median and 90th percentile, in ms. */
  p50Ms: number;
  p90Ms: number;
  /** Transactions in flight, averaged over the window. */
  meanInFlight: number;
  /** The last answer before the `/R/plan` transaction → that transaction sent, in ms. */
  tailMs: number;
}

export class TxnTimeline {
  private entries: Entry[] = [];

  /** Records every `kv.txn` call of `client` (every fenced write and claim goes through it). */
  constructor(client: Etcd3) {
    const txn = client.kv.txn.bind(client.kv);
    client.kv.txn = (...args: Parameters<typeof txn>) => {
      const entry: Entry = { start: performance.now() };
      this.entries.push(entry);
      const answered = txn(...args);
      const settle = () => {
        entry.end = performance.now();
      };
      answered.then(settle, settle);
      return answered;
    };
  }

  get count(): number {
    return this.entries.length;
  }

  /** The transactions between `first` and `plan` (performance.now() times); call once they are answered. */
  window(first: number, plan: number): TxnWindow {
    const sent = this.entries.filter((entry) => entry.start <= plan && (entry.end ?? plan) >= first);
    const latencies = sent.map((entry) => (entry.end ?? plan) - entry.start).sort((a, b) => a - b);
    const at = (share: number) => latencies[Math.floor(share * (latencies.length - 1))] ?? 0;
    let inFlight = 0;
    for (const entry of sent) inFlight += Math.min(entry.end ?? plan, plan) - Math.max(entry.start, first);
    // The `/R/plan` transaction is the last one sent before the plan was seen.
    const planSent = sent.at(-1)?.start ?? plan;
    const answers = sent.slice(0, -1).map((entry) => entry.end ?? plan);
    return {
      txns: sent.length,
      p50Ms: at(0.5),
      p90Ms: at(0.9),
      meanInFlight: inFlight / Math.max(1, plan - first),
      tailMs: answers.length > 0 ? Math.max(0, planSent - Math.max(...answers)) : 0,
    };
  }
}

export function txnText(window: TxnWindow): string {
  return `master Txn p50/p90 ${window.p50Ms.toFixed(0)}/${window.p90Ms.toFixed(0)} ms, ${window.meanInFlight.toFixed(1)} in flight, last task write → /R/plan sent ${window.tailMs.toFixed(0)} ms`;
}
