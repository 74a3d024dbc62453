// Time-driven behaviour through the real runtime, on a Worker with short TTLs:
// a lease whose call never reports back is expired by the account Durable Object's alarm,
// and an expired nonce with a correct digest gets a stale=true challenge.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { startWorker, newToken, call, digestAnswer } from "./harness.mjs";

const PORT = Number(process.env.IT_TIMERS_PORT || 8802);
const REALM = "timers.sip.test";
let w, edge, op, acc, dev;

before(() => {
  w = startWorker("it-timers", PORT, ["LEASE_RING_TTL_SECONDS:2", "NONCE_TTL_SECONDS:2"]);
  edge = newToken();
  op = newToken();
  w.admin("credential", "create", "--name", "edge", "--role", "sip-edge", "--token", edge);
  w.admin("credential", "create", "--name", "ops", "--role", "operator", "--token", op);
  acc = w.admin("account", "create", "--name", "Timers", "--domain", REALM, "--max-calls", "1");
  w.admin("user", "create", "--account", acc.id, "--extension", "2001");
  dev = w.admin("device", "create", "--account", acc.id, "--extension", "2001", "--username", "2001", "--password", "timers-secret");
  w.admin("trunk", "create", "--wholesale", "--name", "wholesale", "--host", "127.0.0.1", "--port", "5099");
});

after(() => w?.stop());

test("a lease nobody reports on is expired by the alarm, freeing the slot", async () => {
  const route = (callId) => call(w, "POST", "/route", { token: edge, body: { callId, from: `sip:2001@${REALM}`, fromDomain: REALM, ruri: `sip:5557654321@${REALM}`, accountId: acc.id, deviceId: dev.id } });
  assert.equal((await route("lost-1")).json.rtjson.action, "outbound");
  assert.equal((await route("lost-2")).json.rtjson.code, 486, "limit 1 is held by lost-1");
  // GET /cac is read-only: only the alarm can remove the lease. Poll (bounded) until it has.
  let cac;
  for (let i = 0; i < 40; i++) {
    await sleep(250);
    cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: op });
    if (cac.json.active === 0) break;
  }
  assert.equal(cac.json.active, 0, `lease still held: ${JSON.stringify(cac.json)}`);
  assert.equal(cac.json.counters.expired, 1);
  assert.equal((await route("next-1")).json.rtjson.action, "outbound", "the slot is free again");
});

test("an expired nonce with a correct digest gets a stale=true challenge", async () => {
  const req = { method: "REGISTER", callId: "r1", sourceIp: "203.0.113.30", sourcePort: 5060, fromUser: "2001", fromDomain: REALM, toUser: "2001", toDomain: REALM, ruri: `sip:${REALM}` };
  const ch = await call(w, "POST", "/auth", { token: edge, body: req });
  const authorization = digestAnswer(ch.json.headers[1], { user: "2001", password: "timers-secret", method: "REGISTER", uri: `sip:${REALM}` });
  await sleep(3200);
  const stale = await call(w, "POST", "/auth", { token: edge, body: { ...req, authorization } });
  assert.equal(stale.json.result, "challenge");
  assert.ok(stale.json.headers.every((h) => h.endsWith("stale=true")), stale.json.header);
  // Answering the new challenge works.
  const fresh = digestAnswer(stale.json.headers[1], { user: "2001", password: "timers-secret", method: "REGISTER", uri: `sip:${REALM}` });
  assert.equal((await call(w, "POST", "/auth", { token: edge, body: { ...req, authorization: fresh } })).json.result, "ok");
});
