import { describe, expect, it } from "vitest";
import { createEtcdClient, leaseConnection } from "../../../src/node/client.js";
import { etcdEndpoints, testSpace } from "../../helpers/context.js";
import { TcpProxy } from "../../helpers/tcp-proxy.js";

describe("the connections of etcd clients in one process", () => {
  it("gives the clients' keep-alives one connection of their own, apart from the data connection they share", async () => {
    const { root } = testSpace("lease-connection");
    const [host, port] = etcdEndpoints()[0].split(":");
    const proxy = new TcpProxy({ host, port: Number(port) });
    await proxy.start();
    const clients = [0, 1, 2].map(() => createEtcdClient({ etcd: [proxy.hostPort] }));
    try {
      for (const [i, client] of clients.entries()) await client.put(`/${root}/k${i}`).value("1");
      expect(proxy.connections).toBe(1);

      const leases = clients.map((client) => leaseConnection(client).lease(5, { autoKeepAlive: false }));
      for (const lease of leases) await lease.keepaliveOnce();
      // One more connection for all three clients' leases (one each before: four in all).
      expect(proxy.connections).toBe(2);
      for (const lease of leases) await lease.revoke();
    } finally {
      for (const client of clients) client.close();
      await proxy.stop();
    }
  });
});
