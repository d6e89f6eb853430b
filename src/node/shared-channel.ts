import { isIPv4, isIPv6 } from "node:net";
import {
  Channel as ChannelImplementation,
  type ChannelCredentials,
  type ChannelInterface as Channel,
  type ChannelOptions,
} from "@grpc/grpc-js";

type ConnectivityState = ReturnType<Channel["getConnectivityState"]>;

/** One channel and the service clients using it; retired once one of them closes it. */
interface Shared {
  channel: Channel;
  users: number;
  retired: boolean;
}

/**
 * A `channelFactoryOverride` for one etcd3 client: its service clients (KV, Watch, Lease, …) share
 * one gRPC channel per endpoint, where etcd3 gives each its own, each with a name resolver and load
 * balancer of its own (they share the HTTP/2 connection anyway). etcd3 closes its service clients
 * together (a failed host, the client's close): the first close retires the channel, so service
 * clients made after it get a new one, as they would have, and the channel closes with its last user.
 */
export function channelPerEndpoint(): (
  address: string,
  credentials: ChannelCredentials,
  options: ChannelOptions,
) => Channel {
  const current = new Map<string, Shared>();
  return (address, credentials, options) => {
    let shared = current.get(address);
    if (!shared || shared.retired) {
      shared = {
        channel: new ChannelImplementation(directTarget(address), credentials, options),
        users: 0,
        retired: false,
      };
      current.set(address, shared);
    }
    shared.users++;
    return new ChannelUse(shared);
  };
}

/**
 * An endpoint given as an IP address, in grpc-js's `ipv4:` / `ipv6:` scheme: its channel then makes no
 * DNS resolver (each one a c-ares channel of its own, about a tenth of a channel's making) for an address
 * that needs no lookup. The channel's authority, and so the name TLS checks, stays `host:port`. A host
 * name keeps the DNS scheme.
 */
export function directTarget(address: string): string {
  const colon = address.lastIndexOf(":");
  const host = colon < 0 ? address : address.slice(0, colon);
  if (colon > 0 && isIPv4(host)) return `ipv4:${address}`;
  if (colon > 0 && host.startsWith("[") && host.endsWith("]") && isIPv6(host.slice(1, -1)))
    return `ipv6:${address}`;
  return address;
}

/** One service client's use of a shared channel: everything goes to the channel, but closing only releases it. */
class ChannelUse implements Channel {
  private closed = false;

  constructor(private readonly shared: Shared) {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.shared.retired = true;
    if (--this.shared.users === 0) this.shared.channel.close();
  }

  getTarget(): string {
    return this.shared.channel.getTarget();
  }

  getConnectivityState(tryToConnect: boolean): ConnectivityState {
    return this.shared.channel.getConnectivityState(tryToConnect);
  }

  watchConnectivityState(
    currentState: ConnectivityState,
    deadline: Date | number,
    callback: (error?: Error) => void,
  ): void {
    this.shared.channel.watchConnectivityState(currentState, deadline, callback);
  }

  getChannelzRef(): ReturnType<Channel["getChannelzRef"]> {
    return this.shared.channel.getChannelzRef();
  }

  createCall(...args: Parameters<Channel["createCall"]>): ReturnType<Channel["createCall"]> {
    return this.shared.channel.createCall(...args);
  }
}
