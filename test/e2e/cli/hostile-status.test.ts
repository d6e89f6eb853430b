/**
 * `status`, `probe` and `history` (the real binary) over records a script wrote straight into etcd:
 * they answer as usual, with one warning on stderr naming each bad key, never a stack trace.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { type KeyLayout, keyLayout } from "../../../src/node/index.js";
import { ensureBuilt, runCli } from "../../helpers/cli.js";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { etcdEndpoints, testClient, uniqueRoot } from "../../helpers/context.js";

const since = "2026-01-01T00:00:00.000Z";
const nested = (depth: number) => "[".repeat(depth) + "]".repeat(depth);

const CASES: Array<{ name: string; key: (keys: KeyLayout) => string; value: string; leased?: boolean }> = [
  { name: "/R/plan is {}", key: (keys) => keys.plan, value: "{}" },
  { name: '/R/plan is {"workers":5}', key: (keys) => keys.plan, value: '{"workers":5}' },
  {
    name: 'a status {"state":5}',
    key: (keys) => keys.status("w1", "t1"),
    value: '{"state":5}',
    leased: true,
  },
  {
    name: 'a registration with "host":5',
    key: (keys) => keys.worker("w1"),
    value: '{"host":5}',
    leased: true,
  },
  { name: 'a history record with "moves":"x"', key: (keys) => keys.history(2), value: '{"moves":"x"}' },
  {
    name: "a pause reason nested 100,000 deep",
    key: (keys) => keys.paused,
    value: `{"reason":${nested(100_000)},"at":"${since}"}`,
  },
  {
    name: "a cordon reason that is an object",
    key: (keys) => keys.cordon("w1"),
    value: `{"mode":"cordon","reason":{"a":1},"at":"${since}"}`,
  },
];

describe("status, probe and history over hostile records", () => {
  beforeAll(async () => {
    await ensureBuilt();
  }, 180_000);

  it.each(CASES)(
    "$name: status exits 0, probe 0 or 1, history 0, each naming the key once",
    async (hostile) => {
      const root = uniqueRoot("hostile-cli");
      const keys = keyLayout(root);
      const client = testClient();
      const { ID: lease } = await client.leaseClient.leaseGrant({ TTL: 60 });
      const put = (key: string, value: string, leased: boolean) =>
        client.kv.put({ key: Buffer.from(key), value: Buffer.from(value), ...(leased ? { lease } : {}) });
      await put(
        keys.worker("w1"),
        JSON.stringify({ name: "w1", host: "h", pid: 1, version: "v", startedAt: since }),
        true,
      );
      await put(keys.task("w1", "t1"), JSON.stringify({ id: "t1" }), false);
      await put(keys.status("w1", "t1"), JSON.stringify({ state: "running", attempt: 1, since }), true);
      await put(keys.barrierLeft, since, false);
      await put(
        keys.plan,
        JSON.stringify({ epoch: 1, leader: "m1", at: since, workers: ["w1"], tasks: 1, moved: 0 }),
        false,
      );
      const key = hostile.key(keys);
      await put(key, hostile.value, hostile.leased ?? false);

      // A loaded machine must not turn the probe's short default dial timeout into "cannot tell".
      const connection = ["--etcd", etcdEndpoints().join(","), "--root", root, "--dial-timeout", "10s"];
      const [status, json, probe, history] = await Promise.all([
        runCli(["status", ...connection]),
        runCli(["status", "--json", ...connection]),
        runCli(["probe", ...connection]),
        runCli(["history", "--task", "t1", ...connection]),
      ]);
      expect({ code: status.code, stderr: status.stderr }).toMatchObject({ code: 0 });
      expect(status.stdout).toMatch(/^root /);
      expect(json.code, json.stderr).toBe(0);
      expect(JSON.parse(json.stdout)).toMatchObject({ root });
      // No leader campaigns here, so the cluster is not ready: exit 1 with the reasons, not 2.
      expect({ code: probe.code, stderr: probe.stderr }).toMatchObject({ code: 1 });
      expect(probe.stdout).toMatch(/no master is leading/);
      expect(history.code, history.stderr).toBe(0);
      for (const run of [status, json, probe, history]) {
        expect(run.stderr).not.toMatch(/TypeError|RangeError|\n\s+at /);
      }
      // Whoever reads the bad key names it once, on stderr (stdout stays the answer).
      const named = [status, json, probe, history].filter((run) => run.stderr.includes(JSON.stringify(key)));
      expect(named.length).toBeGreaterThan(0);
      for (const run of named) expect(run.stderr.split(JSON.stringify(key)).length - 1).toBe(1);
    },
  );

  it("a master's /status, /readyz and console answer over hostile records, naming each bad key once in its log", async () => {
    const cluster = await Cluster.start({ masters: 1, workers: 1, tasks: unitTasks(2) });
    const { keys, client } = cluster;
    const hostile: Array<[string, string]> = [
      [keys.paused, `{"reason":${nested(100_000)},"at":"${since}"}`],
      [keys.cordon("w1"), `{"mode":"cordon","reason":${nested(100_000)},"at":"${since}"}`],
      [keys.history(1), '{"moves":"x"}'],
      [keys.worker("fake-1"), '{"name":"fake-1"}'],
    ];
    for (const [key, value] of hostile) await client.put(key).value(value);
    const http = (path: string) => fetch(`http://${cluster.node("m1").http}${path}`);
    for (let round = 0; round < 2; round++) {
      const answers = await Promise.all(
        ["/status", "/readyz", "/console/snapshot", "/console/search?q=task"].map(async (path) => {
          const response = await http(path);
          return { path, status: response.status, body: await response.text() };
        }),
      );
      for (const answer of answers) expect(answer.status, `${answer.path}: ${answer.body}`).toBe(200);
      const status = JSON.parse(answers[0].body) as {
        cluster: { paused: unknown; workers: { name: string }[] };
      };
      expect(status.cluster.paused).toEqual({ at: since });
      expect(status.cluster.workers.map((worker) => worker.name)).toEqual(["w1"]);
    }
    const log = cluster.node("m1").process.stdout;
    for (const [key] of hostile) expect(log.split(JSON.stringify(key)).length - 1, key).toBe(1);
  });
});
