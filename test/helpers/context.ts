import { randomBytes } from "node:crypto";
import type { Etcd3 } from "etcd3";
import { afterEach, inject } from "vitest";
import { createEtcdClient } from "../../src/node/client.js";
import { KeyLayout } from "../../src/node/keys.js";

/** Endpoints of the run's shared etcd. */
export function etcdEndpoints(): string[] {
  return inject("etcdEndpoints");
}

/** A root no other test uses, so one etcd serves the whole run. */
export function uniqueRoot(label = "t"): string {
  return `test-${label}-${randomBytes(4).toString("hex")}`;
}

const openClients: Etcd3[] = [];
afterEach(() => {
  for (const client of openClients.splice(0)) client.close();
});

/** An etcd client closed automatically after the test. */
export function testClient(endpoints: string[] = etcdEndpoints()): Etcd3 {
  const client = createEtcdClient({ etcd: endpoints, dialTimeout: 5_000 });
  openClients.push(client);
  return client;
}

/** A fresh root with its key layout and a client. */
export function testSpace(label?: string): {
  root: string;
  keys: KeyLayout;
  client: Etcd3;
  endpoints: string[];
} {
  const root = uniqueRoot(label);
  return { root, keys: new KeyLayout(root), client: testClient(), endpoints: etcdEndpoints() };
}

/** Polls `check` until it returns a truthy value (returned) or throws after `timeoutMs` with `what`. */
export async function waitFor<T>(
  what: string,
  check: () => T | Promise<T>,
  timeoutMs = 10_000,
  everyMs = 20,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
