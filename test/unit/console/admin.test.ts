import { describe, expect, it } from "vitest";
import { consoleAdmin } from "../../../src/console/index.js";

const run = async () => undefined;

describe("consoleAdmin", () => {
  it("is off without --http-admin, whatever the environment holds", () => {
    expect(
      consoleAdmin({ httpAdmin: false, http: ":8080" }, run, { ESCHEDULER_ADMIN_TOKEN: "t" }),
    ).toBeUndefined();
  });

  it("needs --http and a non-empty ESCHEDULER_ADMIN_TOKEN, refusing with a one-line ERR_CONFIG", () => {
    expect(() => consoleAdmin({ httpAdmin: true }, run, { ESCHEDULER_ADMIN_TOKEN: "t" })).toThrow(
      expect.objectContaining({
        code: "ERR_CONFIG",
        message: expect.stringContaining("--http-admin needs --http"),
      }),
    );
    expect(() =>
      consoleAdmin({ httpAdmin: true, http: ":8080" }, run, { ESCHEDULER_ADMIN_TOKEN: " " }),
    ).toThrow(
      expect.objectContaining({
        code: "ERR_CONFIG",
        message: expect.stringContaining("ESCHEDULER_ADMIN_TOKEN"),
      }),
    );
  });

  it("guards the actions with the token from the environment", () => {
    expect(
      consoleAdmin({ httpAdmin: true, http: ":8080" }, run, { ESCHEDULER_ADMIN_TOKEN: "s3cret" }),
    ).toEqual({
      token: "s3cret",
      run,
    });
  });
});
