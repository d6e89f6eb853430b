import type { TestProject } from "vitest/node";
import { type EtcdMember, startEtcd } from "./etcd.js";

declare module "vitest" {
  export interface ProvidedContext {
    /** host:port endpoints of the etcd that the whole run shares (each test uses its own root). */
    etcdEndpoints: string[];
  }
}

/**
 * One etcd for the whole run: ETCD_ENDPOINTS when set, a container when
 * ESCHEDULER_TEST_ETCD=container (needs a Docker engine), else a spawned `etcd` binary.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (process.env.ETCD_ENDPOINTS) {
    project.provide("etcdEndpoints", process.env.ETCD_ENDPOINTS.split(","));
    return async () => {};
  }
  if (process.env.ESCHEDULER_TEST_ETCD === "container") {
    const { startEtcdContainer } = await import("./etcd-container.js");
    const container = await startEtcdContainer();
    project.provide("etcdEndpoints", [container.endpoint]);
    return () => container.stop();
  }
  const member: EtcdMember = await startEtcd();
  project.provide("etcdEndpoints", [member.hostPort]);
  return () => member.destroy();
}
