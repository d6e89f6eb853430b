import { connectivityState, credentials } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { channelPerEndpoint, directTarget } from "../../../src/node/shared-channel.js";

// Nothing connects: a channel dials only when a call or a state check asks it to.
const insecure = credentials.createInsecure();
const opened: Array<{ close(): void }> = [];
afterEach(() => opened.splice(0).forEach((use) => use.close()));

function useOf(factory: ReturnType<typeof channelPerEndpoint>, address: string) {
  const use = factory(address, insecure, {});
  opened.push(use);
  return use;
}

const id = (use: { getChannelzRef(): { id: number } }) => use.getChannelzRef().id;

describe("one gRPC channel per endpoint for an etcd client's services", () => {
  it("gives the services of one client one channel per address, and another client its own", () => {
    const client = channelPerEndpoint();
    const [kv, watch, lease] = [0, 1, 2].map(() => useOf(client, "127.0.0.1:1"));
    const other = useOf(client, "127.0.0.1:2");
    const elsewhere = useOf(channelPerEndpoint(), "127.0.0.1:1");

    expect(id(watch)).toBe(id(kv));
    expect(id(lease)).toBe(id(kv));
    expect(id(other)).not.toBe(id(kv));
    expect(id(elsewhere)).not.toBe(id(kv));
  });

  it("closes the channel with its last service; services made after a close get a new channel", () => {
    const client = channelPerEndpoint();
    const kv = useOf(client, "127.0.0.1:1");
    const watch = useOf(client, "127.0.0.1:1");

    kv.close();
    kv.close(); // a second close releases nothing more
    expect(watch.getConnectivityState(false)).not.toBe(connectivityState.SHUTDOWN);
    const later = useOf(client, "127.0.0.1:1");
    expect(id(later)).not.toBe(id(watch));
    watch.close();
    expect(watch.getConnectivityState(false)).toBe(connectivityState.SHUTDOWN);
    expect(later.getConnectivityState(false)).not.toBe(connectivityState.SHUTDOWN);
  });

  it("reaches an IP address through grpc-js's ipv4/ipv6 scheme (no DNS resolver), a host name through DNS; the authority stays host:port", () => {
    expect(directTarget("127.0.0.1:2379")).toBe("ipv4:127.0.0.1:2379");
    expect(directTarget("[::1]:2379")).toBe("ipv6:[::1]:2379");
    expect(directTarget("etcd-0.etcd:2379")).toBe("etcd-0.etcd:2379");
    expect(directTarget("localhost:2379")).toBe("localhost:2379");
    expect(directTarget("127.0.0.1")).toBe("127.0.0.1");
    expect(directTarget("::1")).toBe("::1");
    expect(directTarget("300.0.0.1:2379")).toBe("300.0.0.1:2379");
    expect(useOf(channelPerEndpoint(), "127.0.0.1:1").getTarget()).toBe("ipv4:127.0.0.1:1");
    expect(useOf(channelPerEndpoint(), "localhost:1").getTarget()).toBe("dns:localhost:1");
  });
});
