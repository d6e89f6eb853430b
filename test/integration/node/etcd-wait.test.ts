import {
  EtcdAuthenticationFailedError,
  EtcdPermissionDeniedError,
  GRPCDeadlineExceededError,
  GRPCUnavailableError,
  GRPCUnknownError,
} from "etcd3";
import { pino } from "pino";
import { describe, expect, it } from "vitest";
import { waitForEtcd } from "../../../src/node/etcd-wait.js";
import { testSpace } from "../../helpers/context.js";

const refused = () =>
  new GRPCUnavailableError(
    "14 UNAVAILABLE: No connection established. Last error: Error: connect ECONNREFUSED 127.0.0.1:1",
  );
/** What a member without a leader gives a linearizable read: no answer before the deadline. */
const noLeader = () => new GRPCDeadlineExceededError("4 DEADLINE_EXCEEDED: Deadline exceeded");
/** The same, when etcd's side of the deadline ran out first. */
const noLeaderServerSide = () => new GRPCUnknownError("2 UNKNOWN: context deadline exceeded");

function recordingLogger() {
  const lines: Array<{ level: number; msg: string; step?: string; reason?: string; waitedMs?: number }> = [];
  const logger = pino({ level: "info" }, { write: (line: string) => void lines.push(JSON.parse(line)) });
  return { logger, lines };
}

/** A read that fails with `fail()` until `until()` is true, then reads etcd for real. */
function readUntil(space: ReturnType<typeof testSpace>, until: () => boolean, fail: () => Error) {
  let calls = 0;
  const read = async (deadline: number) => {
    calls++;
    if (!until()) throw fail();
    await space.client.get(space.keys.plan).options({ deadline }).exists();
  };
  return { read, calls: () => calls };
}

describe("waitForEtcd (a daemon's start-up against an etcd that may not serve yet)", () => {
  it("waits past the dial timeout while a member answers but none serves, with one warning, and goes on once etcd serves", async () => {
    const space = testSpace("wait");
    const { logger, lines } = recordingLogger();
    const started = Date.now();
    const serving = () => Date.now() - started > 2_500;
    let failures = 0;
    const serve = readUntil(space, serving, () => (++failures % 2 === 0 ? noLeaderServerSide() : noLeader()));
    const answer = readUntil(space, () => true, refused);

    await waitForEtcd(space.client, {
      config: { etcd: space.endpoints, dialTimeout: 1_000 },
      key: space.keys.plan,
      logger,
      serve: serve.read,
      answer: answer.read,
    });

    expect(Date.now() - started).toBeGreaterThanOrEqual(2_500);
    expect(serve.calls()).toBeGreaterThan(2);
    expect(lines.filter((line) => line.msg === "waiting for etcd to serve")).toEqual([
      expect.objectContaining({
        level: 40,
        step: "connect",
        reason: expect.stringMatching(/deadline exceeded/i),
      }),
    ]);
    expect(lines.at(-1)).toMatchObject({ msg: "etcd serves: going on", waitedMs: expect.any(Number) });
  });

  it("waits while members answer only later than a second (an etcd crawling under load), and goes on once etcd serves", async () => {
    const space = testSpace("wait");
    const { logger } = recordingLogger();
    const started = Date.now();
    const serve = readUntil(space, () => Date.now() - started > 5_000, noLeader);
    // Each status comes 1.3 s after it was asked, as gRPC would deliver it: only within the ask's deadline.
    let answered = 0;
    const answer = async (deadline: number) => {
      await new Promise((resolve) => setTimeout(resolve, 1_300));
      if (Date.now() > deadline) throw noLeader();
      answered++;
    };

    await waitForEtcd(space.client, {
      config: { etcd: space.endpoints, dialTimeout: 2_000 },
      key: space.keys.plan,
      logger,
      serve: serve.read,
      answer,
    });

    expect(Date.now() - started).toBeGreaterThanOrEqual(5_000);
    expect(answered).toBeGreaterThan(0);
  });

  it("gives up a dial timeout after the last answer when nothing answers any more", async () => {
    const space = testSpace("wait");
    const { logger, lines } = recordingLogger();
    const started = Date.now();
    const serve = readUntil(space, () => false, noLeader);
    // Members answer (asked every 80 ms: a fifth of the dial timeout) for 1.2 s, then none does.
    let lastAnswerAt = 0;
    const answer = async (deadline: number) => {
      if (Date.now() - started > 1_200) throw refused();
      await space.client.get(space.keys.plan).serializable(true).options({ deadline }).exists();
      lastAnswerAt = Date.now();
    };

    const waiting = waitForEtcd(space.client, {
      config: { etcd: space.endpoints, dialTimeout: 400 },
      key: space.keys.plan,
      logger,
      serve: serve.read,
      answer,
    });

    await expect(waiting).rejects.toMatchObject({ code: "ERR_ETCD_UNREACHABLE" });
    await expect(waiting).rejects.toThrow(
      /cannot use etcd at .*: no answer for 400ms \(--dial-timeout\): .*ECONNREFUSED/,
    );
    const gaveUpAt = Date.now();
    expect(lastAnswerAt - started).toBeGreaterThan(1_000);
    expect(gaveUpAt - lastAnswerAt).toBeGreaterThanOrEqual(400);
    expect(gaveUpAt - lastAnswerAt).toBeLessThan(400 + 1_500);
    expect(lines.filter((line) => line.msg === "waiting for etcd to serve")).toHaveLength(1);
  });

  it("exits within the dial timeout, without a warning, when no endpoint answers at all", async () => {
    const space = testSpace("wait");
    const { logger, lines } = recordingLogger();
    const down = readUntil(space, () => false, refused);
    const started = Date.now();

    const waiting = waitForEtcd(space.client, {
      config: { etcd: ["127.0.0.1:1", "127.0.0.1:2"], dialTimeout: 500 },
      key: space.keys.plan,
      logger,
      serve: down.read,
      answer: down.read,
    });

    await expect(waiting).rejects.toThrow(
      /cannot use etcd at 127\.0\.0\.1:1,127\.0\.0\.1:2: no answer for 500ms \(--dial-timeout\): .*ECONNREFUSED/,
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(450);
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(lines).toEqual([]);
  });

  it("fails at once on an error retrying cannot cure (permission, credentials, TLS), although members answer", async () => {
    const space = testSpace("wait");
    const { logger } = recordingLogger();
    // The answers say a member is there (its status): only the read that needs credentials refuses.
    const cases = [
      () => new EtcdPermissionDeniedError("etcdserver: permission denied"),
      () =>
        new EtcdAuthenticationFailedError("etcdserver: authentication failed, invalid user ID or password"),
      () =>
        new GRPCUnavailableError(
          "14 UNAVAILABLE: No connection established. Last error: SSL routines::wrong version number",
        ),
    ];
    for (const failure of cases) {
      const started = Date.now();
      const waiting = waitForEtcd(space.client, {
        config: { etcd: space.endpoints, dialTimeout: 5_000 },
        key: space.keys.plan,
        logger,
        serve: readUntil(space, () => false, failure).read,
        answer: readUntil(space, () => true, refused).read,
      });
      await expect(waiting).rejects.toThrow(
        /cannot use etcd at .*(permission denied|authentication failed|SSL)/,
      );
      expect(Date.now() - started).toBeLessThan(2_000);
    }
  });
});
