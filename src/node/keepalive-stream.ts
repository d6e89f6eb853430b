import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from "etcd3";

type Stream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export interface KeepaliveHandlers {
  /** etcd answered the keep-alive sent at `sentAt` (monotonic ms) with `ttlSeconds` (≤ 0: lease gone). */
  answered(sentAt: number, ttlSeconds: number): void;
  /** The stream failed (an error, or etcd ended it); a new stream serves the next keep-alive. */
  failed(error: Error): void;
}

/** One opened stream and the send times of its keep-alives not answered yet, oldest first. */
interface Channel {
  opening: Promise<Stream>;
  unanswered: number[];
}

/**
 * Keep-alives of one lease over one long-lived bidi stream, as etcd's Go client sends them (not a
 * stream per attempt). Each goes out when asked, whatever answers are still outstanding: etcd answers
 * a stream's requests in order, so an answer confirms the oldest send time not yet answered, however
 * late it comes (a slow etcd renews the lease all the same). A stream whose oldest keep-alive stays
 * unanswered for `stallMs`, or that errors, is dropped; the next keep-alive opens a new one. A dropped
 * stream is ended before it is cancelled: etcd3 resets the whole connection on an error of a writable
 * stream, which would make every later attempt pay for a new connection.
 */
export class KeepaliveStream {
  private channel?: Channel;
  private closed = false;

  constructor(
    private readonly client: Etcd3,
    private readonly leaseId: string,
    private readonly stallMs: number,
    private readonly handlers: KeepaliveHandlers,
  ) {}

  /** Sends a keep-alive now (on a new stream if the current one has stalled). */
  send(): void {
    if (this.closed) return;
    const sentAt = performance.now();
    const oldest = this.channel?.unanswered[0];
    // Answers still come in order on a stalled stream, but a silent connection may never deliver them.
    if (oldest !== undefined && sentAt - oldest > this.stallMs) this.dropChannel();
    this.channel ??= this.open();
    const channel = this.channel;
    channel.unanswered.push(sentAt);
    channel.opening.then(
      (stream) => {
        if (this.channel === channel) stream.write({ ID: this.leaseId });
      },
      (error: unknown) => this.fail(channel, error instanceof Error ? error : new Error(String(error))),
    );
  }

  /** Ends the stream; nothing more is reported. Idempotent. */
  close(): void {
    this.closed = true;
    this.dropChannel();
  }

  private open(): Channel {
    const channel: Channel = { opening: this.client.leaseClient.leaseKeepAlive(), unanswered: [] };
    channel.opening.then(
      (stream) => {
        stream.on("data", (response) => {
          const sentAt = channel.unanswered.shift();
          if (sentAt === undefined || this.closed) return;
          this.handlers.answered(sentAt, Number(response.TTL));
        });
        stream.on("error", (error) => this.fail(channel, error));
        stream.on("end", () => this.fail(channel, new Error("keep-alive stream ended by etcd")));
      },
      () => undefined,
    );
    return channel;
  }

  /** Reports a failure of the current stream (a dropped one's errors are expected) and drops it. */
  private fail(channel: Channel, error: Error): void {
    if (this.channel !== channel || this.closed) return;
    this.dropChannel();
    this.handlers.failed(error);
  }

  private dropChannel(): void {
    const channel = this.channel;
    this.channel = undefined;
    channel?.opening.then(endQuietly, () => undefined);
  }
}

/** Half-closes, then cancels: the cancel's error finds the stream no longer writable (see above). */
function endQuietly(stream: Stream): void {
  stream.end();
  stream.cancel();
}
