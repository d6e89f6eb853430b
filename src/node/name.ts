import { hostname, networkInterfaces } from "node:os";

/** The default node name: `<first non-internal IPv4>-<pid>`, or `<hostname>-<pid>` without one. */
export function defaultNodeName(): string {
  const ip = Object.values(networkInterfaces())
    .flat()
    .find((address) => address && address.family === "IPv4" && !address.internal)?.address;
  return `${ip ?? hostname()}-${process.pid}`;
}
