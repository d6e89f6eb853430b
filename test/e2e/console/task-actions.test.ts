/**
 * The console's task actions and release, clicked in headless Chromium against real escheduler
 * processes: each does in etcd what its command does, and the audit trail records the admin token's
 * label and the reason typed into the page.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Task } from "../../../src/balancer/index.js";
import { readAudit } from "../../../src/operator/index.js";
import { launchBrowser, type HeadlessBrowser } from "../../helpers/browser.js";
import { runCli } from "../../helpers/cli.js";
import { type Cluster, Cluster as Fleet, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";

const LABEL = "alice@console";
const REASON = "incident 4711";
const healthy = unitTasks(6, 1);
const poison: Task = { id: "poison", group: "bad", payload: { failOn: "*" } };

let browser: HeadlessBrowser;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

/** w1–w3 under m1 with quick quarantine, a long reassign delay, and the admin token labelled LABEL. */
async function fleet(): Promise<Cluster> {
  const cluster = await Fleet.create({ tasks: [...healthy, poison], stopDelayMs: 20 });
  await cluster.startMaster("m1", {
    args: ["--restart-limit", "1", "--quarantine-after", "2", "--reassign-delay", "5m"],
    env: { ESCHEDULER_ADMIN_TOKEN_LABEL: LABEL },
  });
  for (const worker of ["w1", "w2", "w3"]) cluster.startWorker(worker);
  return cluster;
}

/** Clicks `selector` and resolves with the page's answer once it came (`good` or `bad`). */
async function click(page: Page, selector: string): Promise<{ good: boolean; text: string }> {
  await page.$eval("#admin-result", (result) => {
    result.textContent = "";
    result.className = "muted";
  });
  await page.click(selector);
  const answer = await page.waitForSelector("#admin-result.good, #admin-result.bad", { timeout: 20_000 });
  return { good: (await answer.getAttribute("class")) === "good", text: (await answer.textContent()) ?? "" };
}

/** Finds `task` with the page's search box; resolves with the selector of its row's `action` button. */
async function searchRow(page: Page, task: string, action: string): Promise<string> {
  await page.fill("#search", task);
  const selector = `#search-result tr[data-task="${task}"] button[data-action="${action}"]`;
  await page.waitForSelector(selector);
  return selector;
}

const ownerOf = async (cluster: Cluster, task: string) =>
  [...(await cluster.state()).assignment].find(([, ids]) => ids.includes(task))?.[0];

/** A worker other than `worker` (move and pin need somewhere else to go). */
const otherThan = (worker: string | undefined) => ["w1", "w2", "w3"].find((name) => name !== worker)!;

describe("the console's task actions and release (headless Chromium, real processes)", () => {
  it("restart, move, pin, unpin, reset and release act on etcd as the commands do, audited as the token's label with the reason", async () => {
    const cluster = await fleet();
    const audit = async (action: string, subject: { task?: string; worker?: string }) =>
      (await readAudit(cluster.client, cluster.keys)).filter(
        (entry) =>
          entry.action === action &&
          (subject.task === undefined || entry.task === subject.task) &&
          (subject.worker === undefined || entry.worker === subject.worker),
      );
    await waitFor(
      "poison to be quarantined",
      async () =>
        (await cluster.state()).view.plan?.unassignedTasks?.some(
          (t) => t.id === "poison" && t.kind === "quarantined",
        ),
      30_000,
    );
    await cluster.waitConverged({ tasks: healthy });
    const page = await browser.context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    await page.goto(`http://${cluster.node("m1").http}/`);
    await page.fill("#admin-token", cluster.adminToken);
    await page.fill("#admin-reason", REASON);

    // Quarantined: listed with its state and a reset button, counted in the totals.
    const resetButton = '#unassigned tr[data-task="poison"] button[data-action="reset"]';
    await page.waitForSelector(resetButton);
    expect(await page.textContent('#unassigned tr[data-task="poison"] td:nth-child(2)')).toBe("quarantined");
    expect(await page.textContent("#total-quarantined")).toBe("1");

    // restart: the task stops and starts again on its worker.
    const restarted = await ownerOf(cluster, "task-00");
    let clickedAt = Date.now();
    expect(await click(page, await searchRow(page, "task-00", "restart"))).toMatchObject({ good: true });
    const again = await waitFor("task-00 started again", async () =>
      cluster.firstStart("task-00", clickedAt),
    );
    expect(again.worker).toBe(restarted);
    expect(await audit("task restart", { task: "task-00" })).toEqual([
      expect.objectContaining({ by: LABEL, reason: REASON }),
    ]);

    // move: to the worker chosen in the admin form, through the hand-off.
    const moveTo = otherThan(await ownerOf(cluster, "task-01"));
    await page.selectOption("#admin-target", moveTo);
    clickedAt = Date.now();
    expect(await click(page, await searchRow(page, "task-01", "move"))).toMatchObject({ good: true });
    const moved = await waitFor("task-01 started elsewhere", async () =>
      cluster.firstStart("task-01", clickedAt),
    );
    expect(moved.worker).toBe(moveTo);
    expect(await audit("task move", { task: "task-01" })).toEqual([
      expect.objectContaining({ to: moveTo, by: LABEL, reason: REASON }),
    ]);

    // pin: the pin record (the leader then puts the task there), shown in the pins table.
    const pinTo = otherThan(await ownerOf(cluster, "task-02"));
    await page.selectOption("#admin-target", pinTo);
    expect(await click(page, await searchRow(page, "task-02", "pin"))).toMatchObject({ good: true });
    expect(
      JSON.parse((await cluster.client.get(cluster.keys.pin("task-02")).string()) ?? "{}"),
    ).toMatchObject({
      worker: pinTo,
      by: LABEL,
      reason: REASON,
    });
    await waitFor("task-02 on its pinned worker", async () => (await ownerOf(cluster, "task-02")) === pinTo);
    expect(await audit("task pin", { task: "task-02" })).toEqual([
      expect.objectContaining({ to: pinTo, by: LABEL, reason: REASON }),
    ]);

    // unpin: from the pins table.
    const unpin = '#pins tr[data-task="task-02"] button[data-action="unpin"]';
    await page.waitForSelector(unpin);
    expect(await click(page, unpin)).toMatchObject({ good: true });
    expect(await cluster.client.get(cluster.keys.pin("task-02")).string()).toBeNull();
    expect(await audit("task unpin", { task: "task-02" })).toEqual([
      expect.objectContaining({ by: LABEL, reason: REASON }),
    ]);

    // reset: the failure record is deleted and the leader places the task again (it fails again).
    clickedAt = Date.now();
    expect(await click(page, resetButton)).toMatchObject({ good: true });
    await waitFor("poison started again after the reset", async () =>
      cluster.events().some((e) => e.task === "poison" && e.event === "start-failed" && e.t > clickedAt),
    );
    await cluster.history.caughtUp(cluster.client);
    expect(
      cluster.history.events.some((e) => e.type === "delete" && e.key === cluster.keys.failure("poison")),
    ).toBe(true);
    expect(await audit("task reset", { task: "poison" })).toEqual([
      expect.objectContaining({ by: LABEL, reason: REASON }),
    ]);
    await waitFor(
      "poison quarantined again",
      async () => (await cluster.state()).view.plan?.unassignedReasons?.quarantined === 1,
      30_000,
    );

    // release: a crashed worker's tasks are held for it (shown so), until the button ends the wait.
    const crashed = "w3";
    const heldTasks = (await cluster.state()).assignment.get(crashed) ?? [];
    expect(heldTasks.length).toBeGreaterThan(0);
    await cluster.kill(crashed);
    const release = `tr[data-worker="${crashed}"] button[data-action="release"]`;
    await page.waitForSelector(release, { timeout: 20_000 });
    const heldRows = await page.$$eval("#not-running tbody tr", (rows) =>
      rows.map((row) => row.children[2].textContent ?? ""),
    );
    expect(heldRows.filter((text) => text.startsWith(`held for ${crashed} until `))).toHaveLength(
      heldTasks.length,
    );
    expect(await page.textContent("#total-held")).toBe(String(heldTasks.length));
    await page.fill("#search", heldTasks[0]);
    await waitFor("the search to say the task is held", async () =>
      (
        await page
          .textContent(`#search-result tr[data-task="${heldTasks[0]}"] td:nth-child(3)`)
          .catch(() => "")
      )?.startsWith(`held for ${crashed} until `),
    );
    expect(await click(page, release)).toMatchObject({ good: true });
    await cluster.waitConverged({ workers: ["w1", "w2"], tasks: healthy });
    await cluster.history.caughtUp(cluster.client);
    const releasedRecord = cluster.history.events.find(
      (e) => e.type === "put" && e.key === cluster.keys.held(crashed) && e.value.includes("releasedBy"),
    );
    expect(JSON.parse(releasedRecord?.value ?? "{}")).toMatchObject({ releasedBy: LABEL, reason: REASON });
    expect(await audit("release", { worker: crashed })).toEqual([
      expect.objectContaining({ by: LABEL, reason: REASON }),
    ]);

    // The page lists the newest actions with who and why; history shows each of them.
    await waitFor("the page to list the release", async () =>
      (await page.textContent("#actions"))?.includes(`release ${crashed} by ${LABEL}: ${REASON}`),
    );
    expect(await page.textContent("#actions")).toContain(`task reset poison by ${LABEL}: ${REASON}`);
    const history = await runCli([
      "history",
      "--limit",
      "200",
      "--etcd",
      cluster.endpoints.join(","),
      "--root",
      cluster.root,
    ]);
    for (const action of ["task restart", "task move", "task pin", "task unpin", "task reset", "release"]) {
      expect(history.stdout).toMatch(new RegExp(`action +${action} .*by ${LABEL}: ${REASON}`));
    }
    expect(pageErrors).toEqual([]);
    // Without the poison task the fleet converges, and no task ever ran twice.
    cluster.setTasks(healthy);
    expect((await cluster.schedule()).status).toBe(200);
    await cluster.waitConverged({ workers: ["w1", "w2"] });
    expect(await cluster.invariantProblems()).toEqual([]);
  });
});
