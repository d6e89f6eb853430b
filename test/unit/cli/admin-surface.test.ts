import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Command } from "commander";
import { Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { masterConfigSchema, parseConfig } from "../../../src/cli/config.js";
import { type HttpEndpoint, serveHttp } from "../../../src/cli/http.js";
import { addSetting, resolveOptions } from "../../../src/cli/options.js";

describe("POST /schedule is an admin action: token, JSON and --http-admin (issue 19, defect 7)", () => {
  let endpoint: HttpEndpoint | undefined;
  afterEach(async () => {
    await endpoint?.close();
    endpoint = undefined;
  });

  async function serve(adminToken: string | undefined) {
    const reasons: string[] = [];
    endpoint = await serveHttp("127.0.0.1:0", {
      readiness: () => ({ ready: true, reasons: [] }),
      status: () => ({}),
      metrics: new Registry(),
      schedule: (reason) => {
        reasons.push(reason);
        return { applied: true };
      },
      adminToken,
    });
    return { url: endpoint.url, reasons };
  }

  const post = (url: string, headers: Record<string, string>) =>
    fetch(`${url}/schedule?reason=nightly`, { method: "POST", headers });

  it("refuses a simple cross-site POST without a token (401), and schedules nothing", async () => {
    const { url, reasons } = await serve("s3cret");
    expect((await post(url, {})).status).toBe(401);
    expect((await post(url, { "Content-Type": "text/plain" })).status).toBe(401);
    expect(
      (await post(url, { Authorization: "Bearer wrong", "Content-Type": "application/json" })).status,
    ).toBe(401);
    expect(reasons).toEqual([]);
  });

  it("refuses a request with the token that is not declared JSON (415): a form cannot send it", async () => {
    const { url, reasons } = await serve("s3cret");
    const response = await post(url, {
      Authorization: "Bearer s3cret",
      "Content-Type": "application/x-www-form-urlencoded",
    });
    expect(response.status).toBe(415);
    expect(reasons).toEqual([]);
  });

  it("refuses every schedule request when admin actions are off (403)", async () => {
    const { url, reasons } = await serve(undefined);
    const response = await post(url, { Authorization: "Bearer s3cret", "Content-Type": "application/json" });
    expect(response.status).toBe(403);
    expect(reasons).toEqual([]);
  });

  it("schedules with the bearer token and a JSON content type", async () => {
    const { url, reasons } = await serve("s3cret");
    const response = await post(url, {
      Authorization: "Bearer s3cret",
      "Content-Type": "application/json; charset=utf-8",
    });
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ applied: true });
    expect(reasons).toEqual(["nightly"]);
  });
});

describe("boolean settings parse true|false|1|0 from variables and files (issue 19, defect 7)", () => {
  const saved = { ...process.env };
  afterEach(() => {
    process.env = { ...saved };
  });

  function httpAdmin(args: string[]): boolean {
    const command = new Command("master").exitOverride().option("--config <file.json>", "settings");
    addSetting(command, "--http-admin", "admin actions");
    command.parse(args, { from: "user" });
    return parseConfig(masterConfigSchema, resolveOptions(command)).httpAdmin;
  }

  function configFile(settings: unknown): string {
    const path = join(mkdtempSync(join(tmpdir(), "escheduler-config-")), "config.json");
    writeFileSync(path, JSON.stringify(settings));
    return path;
  }

  it.each([
    ["false", false],
    ["0", false],
    ["true", true],
    ["1", true],
  ])("ESCHEDULER_HTTP_ADMIN=%s means %s", (value, expected) => {
    process.env.ESCHEDULER_HTTP_ADMIN = value;
    expect(httpAdmin([])).toBe(expected);
  });

  it.each(["yes", "", "False ", "2"])(
    "ESCHEDULER_HTTP_ADMIN=%j is refused with ERR_CONFIG naming it",
    (value) => {
      process.env.ESCHEDULER_HTTP_ADMIN = value;
      expect(() => httpAdmin([])).toThrow(
        expect.objectContaining({
          code: "ERR_CONFIG",
          message: expect.stringMatching(/ESCHEDULER_HTTP_ADMIN .*true, false, 1 or 0/),
        }),
      );
    },
  );

  it("--no-http-admin wins over the variable, --http-admin over the file", () => {
    process.env.ESCHEDULER_HTTP_ADMIN = "true";
    expect(httpAdmin(["--no-http-admin"])).toBe(false);
    delete process.env.ESCHEDULER_HTTP_ADMIN;
    expect(httpAdmin(["--http-admin", "--config", configFile({ "http-admin": false })])).toBe(true);
  });

  it("a --config file's boolean takes true, false, 1 or 0 and refuses anything else", () => {
    expect(httpAdmin(["--config", configFile({ "http-admin": "false" })])).toBe(false);
    expect(httpAdmin(["--config", configFile({ "http-admin": 1 })])).toBe(true);
    expect(() => httpAdmin(["--config", configFile({ "http-admin": "yes" })])).toThrow(
      /invalid --http-admin "yes": must be true, false, 1 or 0/,
    );
  });
});
