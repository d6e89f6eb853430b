const SIGNALS = ["SIGTERM", "SIGINT", "SIGHUP"] as const;

/**
 * Stopped from outside (SIGTERM, Ctrl-C), the soak takes its processes with it: left running, they
 * would find a later soak's etcd on a reused port and register there as its nodes. Returns the
 * function that stops listening (once the soak closes the fleet itself).
 */
export function closeOnInterrupt(close: () => Promise<void>): () => void {
  const interrupted = (signal: NodeJS.Signals) => {
    void close().finally(() => process.exit(signal === "SIGINT" ? 130 : 143));
  };
  for (const signal of SIGNALS) process.once(signal, interrupted);
  return () => {
    for (const signal of SIGNALS) process.off(signal, interrupted);
  };
}
