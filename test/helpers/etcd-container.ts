import { GenericContainer, Wait } from "testcontainers";

/** etcd in a container (optional path: needs a reachable Docker engine, which CI here does not have). */
export async function startEtcdContainer(): Promise<{ endpoint: string; stop(): Promise<void> }> {
  const container = await etcdContainer().catch((error: unknown) => {
    throw new Error(
      `ESCHEDULER_TEST_ETCD=container needs a reachable Docker engine (DOCKER_HOST, or /var/run/docker.sock): ${(error as Error).message}`,
    );
  });
  return {
    endpoint: `${container.getHost()}:${container.getMappedPort(2379)}`,
    stop: async () => {
      await container.stop();
    },
  };
}

function etcdContainer() {
  return new GenericContainer("quay.io/coreos/etcd:v3.5.17")
    .withCommand([
      "etcd",
      "--listen-client-urls",
      "http://0.0.0.0:2379",
      "--advertise-client-urls",
      "http://0.0.0.0:2379",
      "--heartbeat-interval",
      "10",
      "--election-timeout",
      "100",
    ])
    .withExposedPorts(2379)
    .withWaitStrategy(Wait.forHttp("/health", 2379))
    .start();
}
