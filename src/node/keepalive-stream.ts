import type { Etcd3, IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse } from "etcd3";

type Stream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

export interface KeepaliveHandlers {
  /** etcd answered the keep-alive sent at `sentAt` (monotonic ms) with `ttlSeconds` (≤ 0: lease gone). */
  answered(sentAt: number, ttlSeconds: number): void;
  /** The attempt failed (stream error, or no answer within the timeout); a new stream serves the next. */
  failed(error: Error): void;
}

/**
 * Keep-alives of one lease over one long-lived bidi stream, as etcd's Go client sends them (not a
 * stream per attempt). One attempt is outstanding at a time; one unanswered within `timeoutMs`, or
 * a stream error, drops the stream. A dropped stream is ended before it is cancelled: etcd3 resets
 * the whole connection on an error of a writable stream, which would make every later attempt pay
 * for a new connection — under a busy etcd, long enough to lose the lease.
 */
export class KeepaliveStream {
  private stream?: Promise<Stream>;
  private outstanding?: { sentAt: number; timer: NodeJS.Timeout };

  constructor(
    private readonly client: Etcd3,
    private readonly leaseId: string,
    private readonly timeoutMs: number,
    private readonly handlers: KeepaliveHandlers,
  ) {}

  /** Sends a keep-alive unless one is still outstanding. */
  send(): void {
    if (this.outstanding) return;
    const sentAt = performance.now();
    const timer = setTimeout(
      () => this.drop(new Error(`no keep-alive answer within ${this.timeoutMs}ms`)),
      this.timeoutMs,
    );
    this.outstanding = { sentAt, timer };
    this.stream ??= this.open();
    const stream = this.stream;
    stream.then(
      (opened) => {
        if (this.stream === stream) opened.write({ ID: this.leaseId });
      },
      (error: unknown) => {
        if (this.stream === stream) this.drop(error instanceof Error ? error : new Error(String(error)));
      },
    );
  }

  /** Ends the stream; nothing more is reported. */
  close(): void {
    this.clearOutstanding();
    const stream = this.stream;
    this.stream = undefined;
    stream?.then(endQuietly, () => undefined);
  }

  private open(): Promise<Stream> {
    const opening = this.client.leaseClient.leaseKeepAlive();
    opening.then(
      (stream) => {
        stream.on("data", (response) => {
          if (this.stream !== opening || !this.outstanding) return;
          const { sentAt } = this.outstanding;
          this.clearOutstanding();
          this.handlers.answered(sentAt, Number(response.TTL));
        });
        stream.on("error", (error) => {
          if (this.stream === opening) this.drop(error);
        });
        stream.on("end", () => {
          if (this.stream === opening) this.drop(new Error("keep-alive stream ended by etcd"));
        });
      },
      () => undefined,
    );
    return opening;
  }

  private drop(error: Error): void {
    this.close();
    this.handlers.failed(error);
  }

  private clearOutstanding(): void {
    clearTimeout(this.outstanding?.timer);
    this.outstanding = undefined;
  }
}

/** Half-closes, then cancels: the cancel's error finds the stream no longer writable (see above). */
function endQuietly(stream: Stream): void {
  stream.end();
  stream.cancel();
}
