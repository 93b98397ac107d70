// Drive the real, unmodified Dapr JavaScript SDK (@dapr/dapr, pinned in
// package.json / package-lock.json) against a wasilock server.
//
// Usage: node dapr_js.mjs http|grpc
//
// Configuration (environment only):
//   DAPR_HTTP_PORT, DAPR_GRPC_PORT  ports of the server (defaults 3500 / 50001);
//                                   the one matching the mode is passed as daprPort.
//   DAPR_API_TOKEN                  passed as daprApiToken when set (the SDK would
//                                   also read it itself).
//   DAPR_HTTP_ENDPOINT              in http mode, when set (`https://host:port`), the
//                                   SDK reads it itself: no daprHost/daprPort are passed.
//   WASILOCK_STORE                  lock store name (default "lockstore").
//
// Prints one line per passed step; the last line is exactly
// `js sdk (<mode>): all checks passed`. Any mismatch exits 1.

import { randomUUID } from "node:crypto";
import { CommunicationProtocolEnum, DaprClient, LogLevel } from "@dapr/dapr";

const GLOBAL_TIMEOUT_MS = 90_000;
setTimeout(() => {
  console.error(`FAIL: global timeout of ${GLOBAL_TIMEOUT_MS / 1000} s reached`);
  process.exit(1);
}, GLOBAL_TIMEOUT_MS).unref();

const mode = process.argv[2];
if (mode !== "http" && mode !== "grpc") {
  console.error("usage: node dapr_js.mjs http|grpc");
  process.exit(2);
}
const isGrpc = mode === "grpc";
const STORE = process.env.WASILOCK_STORE || "lockstore";
const TOKEN = process.env.DAPR_API_TOKEN || undefined;
const OWNER = "conftest";

// @dapr/dapr's LockStatus enum (types/lock/UnlockResponse) is not exported from
// the package root; its values are these numbers.
const LockStatus = { Success: 0, LockDoesNotExist: 1, LockBelongsToOthers: 2, InternalError: 3 };
// gRPC status codes as exposed by ConnectError.code (@connectrpc/connect Code enum).
const GrpcCode = { InvalidArgument: 3 };

class CheckFailed extends Error {}
const check = (cond, msg) => {
  if (!cond) throw new CheckFailed(msg);
};
const ok = (msg) => console.log(`ok: ${msg}`);
const uid = (tag) => `wasilock-js-${tag}-${randomUUID()}`;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const port = isGrpc
  ? process.env.DAPR_GRPC_PORT || "50001"
  : process.env.DAPR_HTTP_PORT || "3500";

const endpointFromEnv = !isGrpc && Boolean(process.env.DAPR_HTTP_ENDPOINT);
const client = new DaprClient({
  ...(endpointFromEnv ? {} : { daprHost: "127.0.0.1", daprPort: port }),
  communicationProtocol: isGrpc ? CommunicationProtocolEnum.GRPC : CommunicationProtocolEnum.HTTP,
  ...(TOKEN ? { daprApiToken: TOKEN } : {}),
  logger: { level: LogLevel.Warn },
});

// How the SDK surfaces a failed call:
//  - HTTP: `new Error(JSON.stringify({error: res.statusText, error_msg: <raw body>, status}))`
//    for any status outside 200-399.
//  - gRPC: a ConnectError (@connectrpc/connect) with .code (number), .rawMessage
//    (the grpc-message), .message ("[invalid_argument] ..."), .details.
function describe(e) {
  if (e && e.name === "ConnectError") return `ConnectError code=${e.code} rawMessage=${JSON.stringify(e.rawMessage)}`;
  return `${e && e.name}: ${e && e.message}`;
}

function parseHttpError(e, what) {
  let parsed;
  try {
    parsed = JSON.parse(e.message);
  } catch {
    throw new CheckFailed(`${what}: expected the SDK's JSON HTTP error, got ${describe(e)}`);
  }
  check(typeof parsed === "object" && parsed !== null && "status" in parsed,
    `${what}: unexpected error shape ${e.message}`);
  return parsed; // { error, error_msg, status }
}

async function expectReject(promise, what) {
  try {
    const v = await promise;
    throw new CheckFailed(`${what}: expected an error, got ${JSON.stringify(v)}`);
  } catch (e) {
    if (e instanceof CheckFailed) throw e;
    return e;
  }
}

// Expect the daprd error for a lock request: HTTP status + {errorCode, message}, or gRPC code + message.
async function expectDaprError(promise, what, { httpStatus, errorCode, grpcCode, message }) {
  const e = await expectReject(promise, what);
  if (isGrpc) {
    check(e.name === "ConnectError", `${what}: expected a ConnectError, got ${describe(e)}`);
    check(e.code === grpcCode, `${what}: expected gRPC code ${grpcCode}, got ${describe(e)}`);
    check(e.rawMessage === message, `${what}: expected message ${JSON.stringify(message)}, got ${describe(e)}`);
    return `ConnectError code ${e.code} ${JSON.stringify(e.rawMessage)}`;
  }
  const p = parseHttpError(e, what);
  check(p.status === httpStatus, `${what}: expected HTTP ${httpStatus}, got ${e.message}`);
  let body;
  try {
    body = JSON.parse(p.error_msg);
  } catch {
    throw new CheckFailed(`${what}: error body is not JSON: ${JSON.stringify(p.error_msg)}`);
  }
  check(body.errorCode === errorCode, `${what}: expected errorCode ${errorCode}, got ${p.error_msg}`);
  check(body.message === message, `${what}: expected message ${JSON.stringify(message)}, got ${p.error_msg}`);
  return `HTTP ${p.status} ${p.error_msg}`;
}

async function conformance() {
  const key1 = uid("key1");
  const key2 = uid("key2");

  let r = await client.lock.lock(STORE, key1, OWNER, 15);
  check(r.success === true, `lock key1 (15 s): expected success true, got ${JSON.stringify(r)}`);
  ok("lock key1 owner conftest expiry 15 -> success true");

  const tKey2 = performance.now(); // before sending: the expiry starts no earlier
  r = await client.lock.lock(STORE, key2, OWNER, 3);
  check(r.success === true, `lock key2 (3 s): expected success true, got ${JSON.stringify(r)}`);
  ok("lock key2 owner conftest expiry 3 -> success true");

  r = await client.lock.lock(STORE, key1, OWNER, 15);
  check(r.success === false, `lock key1 again (same owner): expected success false, got ${JSON.stringify(r)}`);
  ok("lock key1 same owner again -> success false (not reentrant)");

  let u = await client.lock.unlock(STORE, uid("nonexistent"), OWNER);
  check(u.status === LockStatus.LockDoesNotExist, `unlock nonexistent: expected status 1, got ${JSON.stringify(u)}`);
  ok("unlock nonexistent -> LockDoesNotExist (1)");

  u = await client.lock.unlock(STORE, key1, "nonowner");
  check(u.status === LockStatus.LockBelongsToOthers, `unlock key1 by nonowner: expected status 2, got ${JSON.stringify(u)}`);
  ok("unlock key1 owner nonowner -> LockBelongsToOthers (2)");

  u = await client.lock.unlock(STORE, key1, OWNER);
  check(u.status === LockStatus.Success, `unlock key1 by conftest: expected status 0, got ${JSON.stringify(u)}`);
  ok("unlock key1 owner conftest -> Success (0)");

  const deadline = performance.now() + 6000;
  let attempts = 0;
  let now;
  for (;;) {
    attempts++;
    r = await client.lock.lock(STORE, key2, OWNER, 3);
    now = performance.now();
    if (r.success === true) break;
    check(r.success === false, `lock key2 poll: unexpected response ${JSON.stringify(r)}`);
    check(now < deadline, `lock key2 never succeeded within 6 s (${attempts} attempts)`);
    await sleep(100);
  }
  const elapsed = (now - tKey2) / 1000;
  check(elapsed >= 2.5, `lock key2 succeeded ${elapsed.toFixed(2)} s after it was locked for 3 s (expected >= 2.5 s)`);
  ok(`key2 expired: lock succeeded again ${elapsed.toFixed(2)} s after the 3 s lock (${attempts} polls)`);
  await client.lock.unlock(STORE, key2, OWNER);
}

async function unknownStore() {
  const message = "lock store no-such-store not found";
  const expect = { httpStatus: 400, errorCode: "ERR_LOCK_STORE_NOT_FOUND", grpcCode: GrpcCode.InvalidArgument, message };
  let got = await expectDaprError(client.lock.lock("no-such-store", uid("nostore"), OWNER, 15), "lock on unknown store", expect);
  ok(`lock on unknown store -> ${got}`);
  got = await expectDaprError(client.lock.unlock("no-such-store", uid("nostore"), OWNER), "unlock on unknown store", expect);
  ok(`unlock on unknown store -> ${got}`);
}

async function zeroExpiry() {
  // The JS SDK does not validate arguments; the server rejects expiry 0 (checked first).
  const got = await expectDaprError(client.lock.lock(STORE, uid("zero"), OWNER, 0), "lock with expiry 0", {
    httpStatus: 400,
    errorCode: "ERR_MALFORMED_REQUEST",
    grpcCode: GrpcCode.InvalidArgument,
    message: `ExpiryInSeconds is not positive in lock store ${STORE}`,
  });
  ok(`lock with expiry 0 (not validated by the SDK) -> ${got}`);
}

async function main() {
  // Polls GET /v1.0/metadata (HTTP) or GetMetadata (gRPC) every 500 ms, 61 times,
  // then throws Error("DAPR_SIDECAR_COULD_NOT_BE_STARTED").
  await client.start();
  ok(`SDK start-up probe passed (${isGrpc ? "GetMetadata" : "GET /v1.0/metadata"})`);
  await conformance();
  await unknownStore();
  await zeroExpiry();
  await client.stop();
  console.log(`js sdk (${mode}): all checks passed`);
}

try {
  await main();
  process.exit(0);
} catch (e) {
  if (e instanceof CheckFailed) console.error(`FAIL: ${e.message}`);
  else console.error(`FAIL: unexpected error: ${describe(e)}\n${e && e.stack}`);
  process.exit(1);
}
