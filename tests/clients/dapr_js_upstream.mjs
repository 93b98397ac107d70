// Drive the real, unmodified Dapr JavaScript SDK (@dapr/dapr, pinned in package.json /
// package-lock.json) over HTTP through wasilock to a daprd upstream (the stand-in of
// standin_daprd.py): state goes to daprd, locks stay with wasilock.
//
// Usage: node dapr_js_upstream.mjs
//
// Configuration (environment only): DAPR_HTTP_PORT (wasilock's), DAPR_API_TOKEN (optional),
// WASILOCK_STORE (lock store name, default "lockstore").
//
// Prints one line per passed step; the last line is exactly
// `js sdk upstream (http): all checks passed`. Any mismatch exits 1.

import { randomUUID } from "node:crypto";
import { CommunicationProtocolEnum, DaprClient, LogLevel } from "@dapr/dapr";

const GLOBAL_TIMEOUT_MS = 90_000;
setTimeout(() => {
  console.error(`FAIL: global timeout of ${GLOBAL_TIMEOUT_MS / 1000} s reached`);
  process.exit(1);
}, GLOBAL_TIMEOUT_MS).unref();

const STORE = process.env.WASILOCK_STORE || "lockstore";
const TOKEN = process.env.DAPR_API_TOKEN || undefined;

class CheckFailed extends Error {}
const check = (cond, msg) => {
  if (!cond) throw new CheckFailed(msg);
  console.log(`ok: ${msg}`);
};

const client = new DaprClient({
  daprHost: "127.0.0.1",
  daprPort: process.env.DAPR_HTTP_PORT || "3500",
  communicationProtocol: CommunicationProtocolEnum.HTTP,
  ...(TOKEN ? { daprApiToken: TOKEN } : {}),
  logger: { level: LogLevel.Warn },
});

async function main() {
  // Polls GET /v1.0/metadata (wasilock merges daprd's with its lock stores).
  await client.start();
  check(true, "SDK start-up probe passed (GET /v1.0/metadata)");

  const key = `js-${randomUUID()}`;
  await client.state.save("statestore", [{ key, value: { saved: "through wasilock" } }]);
  const value = await client.state.get("statestore", key);
  check(value && value.saved === "through wasilock", `state saved and read (${JSON.stringify(value)})`);

  const resource = `js-${randomUUID()}`;
  const locked = await client.lock.lock(STORE, resource, "js-upstream", 30);
  check(locked.success === true, `a lock is taken (${JSON.stringify(locked)})`);
  const unlocked = await client.lock.unlock(STORE, resource, "js-upstream");
  check(unlocked.status === 0, `and released (${JSON.stringify(unlocked)})`);

  await client.stop();
  console.log("js sdk upstream (http): all checks passed");
}

try {
  await main();
  process.exit(0);
} catch (e) {
  if (e instanceof CheckFailed) console.error(`FAIL: ${e.message}`);
  else console.error(`FAIL: unexpected error: ${e && e.name}: ${e && e.message}\n${e && e.stack}`);
  process.exit(1);
}
