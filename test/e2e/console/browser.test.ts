/**
 * The web console in a real browser (Debian's headless Chromium, driven by playwright-core) against a
 * real cluster of escheduler processes: what it shows, how fast it follows a crash, and its guarded actions.
 */
import type { Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchBrowser, type HeadlessBrowser } from "../../helpers/browser.js";
import { Cluster, unitTasks } from "../../helpers/cluster.js";
import { waitFor } from "../../helpers/context.js";

const TTL_MS = 2_000;

let browser: HeadlessBrowser;

beforeAll(async () => {
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
});

/** [worker, tasks] per row of the workers table. */
function workerRows(page: Page): Promise<[string, number][]> {
  return page.$$eval("#workers tbody tr", (rows) =>
    rows.map(
      (row) =>
        [row.getAttribute("data-worker") ?? "", Number(row.children[2].textContent)] as [string, number],
    ),
  );
}

/** Waits until the page shows exactly these registered workers, 30 tasks between them, all running. */
async function waitForFleet(page: Page, workers: string[], timeoutMs: number): Promise<void> {
  await waitFor(
    `the page to show ${workers.join(", ")} with 30 running tasks`,
    async () => {
      const rows = await workerRows(page);
      const totals = await Promise.all(
        ["#total-workers", "#total-tasks", "#total-not-running"].map((id) => page.textContent(id)),
      );
      return (
        rows.map(([name]) => name).join(",") === workers.join(",") &&
        rows.reduce((sum, [, tasks]) => sum + tasks, 0) === 30 &&
        totals.join(" ") === `${workers.length} 30 0`
      );
    },
    timeoutMs,
    100,
  );
}

describe("the web console in headless Chromium", () => {
  it("shows the fleet live, follows a killed worker within TTL + 5 s and a change within 2 s, and runs actions only with the token", async () => {
    const cluster = await Cluster.create({ tasks: unitTasks(30), ttl: `${TTL_MS / 1000}s` });
    const master = await cluster.startMaster("m1"); // with --http-admin and cluster.adminToken
    for (const name of ["w1", "w2", "w3"]) cluster.startWorker(name);
    await cluster.waitConverged();
    const page = await browser.context.newPage();
    const pageErrors: string[] = [];
    page.on("pageerror", (error) => pageErrors.push(error.message));
    const requested: string[] = [];
    page.on("request", (request) => requested.push(request.url()));

    await page.goto(`http://${master.http}/`);
    await waitForFleet(page, ["w1", "w2", "w3"], 10_000);
    expect(await page.textContent("#leader")).toBe("m1");
    expect(await page.textContent("#ready")).toBe("READY");
    expect((await workerRows(page)).map(([, tasks]) => tasks)).toEqual([10, 10, 10]);

    const killedAt = Date.now();
    await cluster.kill("w3");
    await waitForFleet(page, ["w1", "w2"], TTL_MS + 5_000 - (Date.now() - killedAt));
    expect((await workerRows(page)).map(([, tasks]) => tasks)).toEqual([15, 15]);

    const cordonW1 = 'tr[data-worker="w1"] button[data-action="cordon"]';
    await page.click(cordonW1);
    await page.waitForSelector("#admin-result.bad");
    expect(await page.textContent("#admin-result")).toContain("refused (HTTP 401)");
    expect(await cluster.client.get(cluster.keys.cordon("w1")).string()).toBeNull();
    expect(master.process.stdout + master.process.stderr).toMatch(
      /"status":401.*"msg":"console action refused"/,
    );

    await page.fill("#admin-token", cluster.adminToken);
    await page.click(cordonW1);
    await page.waitForSelector("#admin-result.good");
    await waitFor(
      "w1 shown as cordoned",
      // A console action is recorded as the admin token's label ("console" unless configured).
      async () => (await page.textContent('tr[data-worker="w1"] td:nth-child(2)')) === "cordon by console",
      5_000,
    );
    expect(JSON.parse((await cluster.client.get(cluster.keys.cordon("w1")).string()) ?? "{}")).toMatchObject({
      mode: "cordon",
    });
    // A change written straight to etcd shows on the page within the 2 s (watch, push, render).
    const writtenAt = Date.now();
    await cluster.client
      .put(cluster.keys.cordon("w2"))
      .value(JSON.stringify({ mode: "cordon", by: "ops", at: new Date().toISOString() }));
    await waitFor(
      "w2 shown as cordoned",
      async () => (await page.textContent('tr[data-worker="w2"] td:nth-child(2)')) === "cordon by ops",
      5_000,
      50,
    );
    expect(Date.now() - writtenAt).toBeLessThan(2_000);
    expect(pageErrors).toEqual([]);
    // Self-contained: everything the page loads comes from the master (no CDN, no font service).
    expect(requested).toContain(`http://${master.http}/console/console.js`);
    expect(requested.filter((url) => !url.startsWith(`http://${master.http}/`))).toEqual([]);
  });
});
