import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../../src/cli/main.js";
import { REPO } from "../../helpers/cli.js";

const README = readFileSync(join(REPO, "README.md"), "utf8");

/** Flags the README names that belong to other tools (etcd, etcdctl, kubectl, npm, node, apt, curl). */
const OTHER_TOOLS = new Set([
  "--heartbeat-interval", // etcd
  "--election-timeout", // etcd
  "--grpc-keepalive-min-time", // etcd
  "--max-txn-ops", // etcd
  "--backend-batch-limit", // etcd
  "--prefix", // etcdctl
  "--bump-revision", // etcdutl
  "--mark-compacted", // etcdutl
  "--from-literal", // kubectl
  "--from-file", // kubectl
  "--expose-gc", // node
  "--import", // node
  "--max-old-space-size", // node
  "--heap-growing-percent", // node (V8)
  "--check", // prettier
  "--write", // prettier
  "--noEmit", // tsc
  "--minutes", // npm run soak
  "--seed", // npm run soak
  "--keep", // npm run soak
]);

/** What `escheduler <args> --help` prints (commander writes help to stdout). */
async function help(args: string[]): Promise<string> {
  let output = "";
  const write = vi.spyOn(process.stdout, "write").mockImplementation((chunk: string | Uint8Array) => {
    output += String(chunk);
    return true;
  });
  try {
    expect(await main(["node", "escheduler", ...args, "--help"])).toBe(0);
  } finally {
    write.mockRestore();
  }
  return output;
}

const flagsIn = (text: string): string[] =>
  [...text.matchAll(/(?<![\w-])--[a-z][a-zA-Z-]*[a-zA-Z]/g)].map((m) => m[0]);

/** Every command line of the README that runs escheduler: code lines and `escheduler …` spans. */
function readmeCommandLines(): string[] {
  const spans = [...README.matchAll(/`((?:npx )?escheduler [^`]+)`/g)].map((match) => match[1]);
  const blocks = [...README.matchAll(/```(?:sh|text)\n([\s\S]*?)```/g)].flatMap((match) =>
    match[1].split("\n"),
  );
  const codeLines = blocks
    .map((line) => line.replace(/^\$ /, ""))
    .filter((line) => /^(npx )?escheduler /.test(line));
  return [...spans, ...codeLines].map((line) => line.replace(/^npx /, ""));
}

describe("the README is true to the command line", () => {
  let commands: string[];
  const helps = new Map<string, string>();

  beforeAll(async () => {
    const top = await help([]);
    const listed = top.slice(top.indexOf("Commands:"));
    commands = [...listed.matchAll(/^ {2}([a-z]+) /gm)].map((match) => match[1]).filter((c) => c !== "help");
    for (const command of commands) helps.set(command, await help([command]));
    // A command group (`task`): each of its commands has a help of its own.
    for (const command of commands) {
      const text = helps.get(command) ?? "";
      if (!text.includes("Commands:")) continue;
      const subcommands = [...text.slice(text.indexOf("Commands:")).matchAll(/^ {2}([a-z]+) /gm)];
      for (const [, sub] of subcommands)
        if (sub !== "help") helps.set(`${command} ${sub}`, await help([command, sub]));
    }
  });
  afterEach(() => vi.restoreAllMocks());

  it("names only commands that exist, each with flags its --help lists", () => {
    const problems: string[] = [];
    for (const line of readmeCommandLines()) {
      const words = /^escheduler ([a-z-]+)(?: ([a-z|]+))?/.exec(line);
      const group = words?.[1];
      const command =
        words?.[2] !== undefined && helps.has(`${group} ${words[2].split("|")[0]}`) ? words[2] : group;
      if (command === undefined || group === undefined || command === "dev" || command.startsWith("-"))
        continue;
      const prefix = command === group ? "" : `${group} `;
      const alternatives = command.split("|");
      for (const name of alternatives) {
        const text = helps.get(prefix + name);
        if (text === undefined) {
          problems.push(`${line}: no command ${name}`);
          continue;
        }
        for (const flag of flagsIn(line.slice(line.indexOf(command) + command.length)))
          if (!flagsIn(text).includes(flag)) problems.push(`${line}: ${name} has no ${flag}`);
      }
    }
    expect(problems).toEqual([]);
  });

  it("names only flags that some command's --help lists", () => {
    const known = new Set([...helps.values(), ...[...helps.values()]].flatMap(flagsIn));
    known.add("--help");
    known.add("--version");
    const unknown = [...new Set(flagsIn(README))].filter(
      (flag) => !known.has(flag) && !OTHER_TOOLS.has(flag),
    );
    expect(unknown).toEqual([]);
  });

  it("lists in its flag table only flags that master and worker both have", () => {
    const table = README.slice(
      README.indexOf("### Flags of master and worker"),
      README.indexOf("Master only:"),
    );
    const rows = [...table.matchAll(/^\| `(--[a-z-]+)/gm)].map((match) => match[1]);
    expect(rows.length).toBeGreaterThan(10);
    const missing = rows.flatMap((flag) =>
      ["master", "worker"].filter((c) => !flagsIn(helps.get(c)!).includes(flag)).map((c) => `${c} ${flag}`),
    );
    expect(missing).toEqual([]);
  });
});

describe("the Kubernetes example keeps the README's rules", () => {
  const manifest = (name: string) => readFileSync(join(REPO, "examples", "kubernetes", name), "utf8");

  it("gives a worker more than twice --stop-timeout to leave", () => {
    const workers = manifest("workers.yaml");
    const grace = Number(/terminationGracePeriodSeconds: (\d+)/.exec(workers)?.[1]);
    const stopTimeout = Number(/--stop-timeout=(\d+)s/.exec(workers)?.[1]);
    expect(grace).toBeGreaterThan(2 * stopTimeout);
  });

  it("builds its image on a supported Node.js LTS (an even major, 22 or later)", () => {
    const major = Number(/^FROM node:(\d+)/m.exec(manifest("Dockerfile"))?.[1]);
    expect(major % 2).toBe(0);
    expect(major).toBeGreaterThanOrEqual(22);
  });

  it("gives a master at least the measured peak (632 MB at 1,000 × 100,000 without a heap limit)", () => {
    const limit = /limits: \{ memory: (\d+)(Mi|Gi) \}/.exec(manifest("masters.yaml"))!;
    const mebibytes = Number(limit[1]) * (limit[2] === "Gi" ? 1024 : 1);
    expect(mebibytes * 1.048576).toBeGreaterThan(632);
  });
});
