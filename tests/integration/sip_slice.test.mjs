// The SIP slice through the real Worker under wrangler dev: gating, /auth, /route, presence,
// concurrency leases, CDRs. Data is provisioned with the real provisioning CLI.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import { startWorker, newToken, call, digestAnswer, challengeParams, fetchRetry } from "./harness.mjs";

const PORT = Number(process.env.IT_PORT || 8801);
let w, tok, acc, acc2, flow, dev1001, carrier;

const REALM = "it.sip.test";

function registerReq(user, extra = {}) {
  return {
    method: "REGISTER", callId: `reg-${user}-${Math.random()}`, sourceIp: "203.0.113.10", sourcePort: 5060, transport: "udp",
    fromUser: user, fromDomain: REALM, toUser: user, toDomain: REALM, ruri: `sip:${REALM}`, userAgent: "it-test", authorization: "", ...extra,
  };
}

async function authOk(user, password, alg) {
  const ch = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq(user) });
  const line = ch.json.headers.find((h) => h.includes(`algorithm=${alg}`));
  const authorization = digestAnswer(line, { user, password, method: "REGISTER", uri: `sip:${REALM}` });
  return call(w, "POST", "/auth", { token: tok.edge, body: registerReq(user, { authorization }) });
}

function routeFromDevice(callId, to, accountId = acc.id, deviceId = dev1001.id) {
  return { callId, from: `sip:1001@${REALM}`, fromDomain: REALM, to: `sip:${to}@${REALM}`, toDomain: REALM, ruri: `sip:${to}@${REALM}`, sourceIp: "203.0.113.10", sourcePort: 5060, accountId, deviceId };
}

before(() => {
  w = startWorker("it-sip", PORT);
  tok = { edge: newToken(), op: newToken(), agent: newToken(), media: newToken(), revoked: newToken() };
  w.admin("credential", "create", "--name", "edge", "--role", "sip-edge", "--token", tok.edge);
  w.admin("credential", "create", "--name", "ops", "--role", "operator", "--token", tok.op);
  w.admin("credential", "create", "--name", "agent", "--role", "agent-app", "--token", tok.agent);
  w.admin("credential", "create", "--name", "media", "--role", "media-node", "--token", tok.media);
  const rev = w.admin("credential", "create", "--name", "old", "--role", "operator", "--token", tok.revoked);
  w.admin("credential", "revoke", "--id", rev.id);
  acc = w.admin("account", "create", "--name", "IT", "--domain", REALM, "--max-calls", "2", "--caller-id-number", "+15550001000", "--caller-id-name", "IT Corp");
  w.admin("user", "create", "--account", acc.id, "--extension", "1001", "--name", "Alice");
  w.admin("user", "create", "--account", acc.id, "--extension", "1002", "--name", "Bob");
  w.admin("user", "create", "--account", acc.id, "--extension", "1003", "--name", "Carol");
  dev1001 = w.admin("device", "create", "--account", acc.id, "--extension", "1001", "--username", "1001", "--password", "pw-1001-secret");
  w.admin("device", "create", "--account", acc.id, "--extension", "1002", "--username", "1002", "--password", "pw-1002-secret");
  w.admin("device", "create", "--account", acc.id, "--extension", "1003", "--username", "1003", "--password", "pw-1003-secret", "--disabled");
  const f = join(w.state, "flow.json");
  writeFileSync(f, JSON.stringify({ version: 1, start: "welcome", nodes: { welcome: { type: "play", tts: { text: "Hi" }, next: "bye" }, bye: { type: "hangup" } } }));
  flow = w.admin("flow", "create", "--account", acc.id, "--name", "main", "--file", f);
  w.admin("number", "create", "--account", acc.id, "--e164", "+15550001000", "--target", `flow:${flow.id}`);
  carrier = w.admin("carrier", "create", "--name", "c1", "--address", "198.51.100.0/24", "--port", "5060");
  w.admin("trunk", "create", "--account", acc.id, "--name", "backup", "--host", "127.0.0.1", "--port", "5091", "--priority", "20");
  w.admin("trunk", "create", "--account", acc.id, "--name", "primary", "--host", "127.0.0.1", "--port", "5090", "--priority", "10");
  w.admin("media-node", "create", "--name", "fs-1", "--host", "127.0.0.1", "--port", "5070");
  acc2 = w.admin("account", "create", "--name", "Suspended", "--domain", "susp.sip.test", "--status", "suspended");
  tok.scoped = newToken();
  w.admin("credential", "create", "--name", "edge-of-acc2", "--role", "sip-edge", "--account", acc2.id, "--token", tok.scoped);
});

after(() => w?.stop());

describe("gating and the error envelope", () => {
  test("health and ready are public", async () => {
    const h = await call(w, "GET", "/health");
    assert.equal(h.status, 200);
    assert.equal(h.text, "OK");
    const r = await call(w, "GET", "/ready");
    assert.equal(r.status, 200);
    assert.equal(r.json.status, "ready");
  });

  test("no, bad, revoked credentials are 401; wrong role is 403; all in the envelope", async () => {
    for (const [token, status] of [[undefined, 401], ["garbage", 401], [tok.edge.slice(0, -1) + "x", 401], [tok.revoked, 401], [tok.agent, 403]]) {
      const r = await call(w, "POST", "/auth", { token, body: registerReq("1001") });
      assert.equal(r.status, status, `token ${token}`);
      assert.equal(r.json.status, "error");
      assert.equal(typeof r.json.message, "string");
    }
    const k = await fetchRetry(w.base + "/auth", { method: "POST", headers: { "x-api-key": tok.edge, "content-type": "application/json" }, body: JSON.stringify(registerReq("1001")) });
    assert.equal(k.status, 200, "X-API-Key works too");
    const op = await call(w, "POST", "/auth", { token: tok.op, body: registerReq("1001") });
    assert.equal(op.status, 200, "operators may call everything");
  });

  test("/v1/* and /hooks/carrier are 501; unknown paths 404; wrong methods 405", async () => {
    assert.equal((await call(w, "GET", "/v1/accounts")).status, 501);
    assert.equal((await call(w, "POST", "/hooks/carrier", { body: {} })).status, 501);
    const nf = await call(w, "GET", "/nope", { token: tok.op });
    assert.equal(nf.status, 404);
    assert.equal(nf.json.status, "error");
    assert.equal((await call(w, "GET", "/auth", { token: tok.edge })).status, 405);
  });

  test("account-scoped credentials stay inside their account", async () => {
    const ch = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001") });
    const authorization = digestAnswer(ch.json.headers[0], { user: "1001", password: "pw-1001-secret", method: "REGISTER", uri: `sip:${REALM}` });
    assert.equal((await call(w, "POST", "/auth", { token: tok.scoped, body: registerReq("1001", { authorization }) })).status, 403);
    assert.equal((await call(w, "POST", "/route", { token: tok.scoped, body: routeFromDevice("scoped-1", "1002") })).status, 403);
    assert.equal((await call(w, "POST", "/route", { token: tok.scoped, body: { callId: "scoped-2", ruri: "sip:+15550001000@x", carrierId: carrier.id } })).status, 403);
    assert.equal((await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.scoped })).status, 403);
  });

  test("events for accounts that do not exist are refused", async () => {
    const ghost = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
    const r = await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId: "g1", accountId: ghost, state: "terminated", reason: "ended" } });
    assert.equal(r.status, 404);
    assert.equal((await call(w, "POST", "/cac/reconcile", { token: tok.media, body: { accountId: ghost, liveCallIds: [] } })).status, 404);
  });

  test("malformed bodies are 4xx, never 5xx", async () => {
    for (const [body, ct, status] of [["{", "application/json", 400], ["[]", "application/json", 400], ["<x/>", "text/xml", 415], ["", "application/json", 400]]) {
      const r = await fetchRetry(w.base + "/auth", { method: "POST", headers: { authorization: `Bearer ${tok.edge}`, "content-type": ct }, body });
      assert.equal(r.status, status, `${ct} ${body}`);
      assert.equal((await r.json()).status, "error");
    }
    const big = await call(w, "POST", "/auth", { token: tok.edge, body: { ...registerReq("1001"), userAgent: "x".repeat(70_000) } });
    assert.equal(big.status, 413);
    const noMethod = await call(w, "POST", "/auth", { token: tok.edge, body: { ...registerReq("1001"), method: "" } });
    assert.equal(noMethod.status, 400);
  });
});

describe("/auth", () => {
  test("REGISTER without credentials: 401 challenge, SHA-256 offered before MD5, one line each", async () => {
    const r = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001") });
    assert.equal(r.status, 200);
    assert.equal(r.json.result, "challenge");
    assert.equal(r.json.code, 401);
    assert.equal(r.json.headers.length, 2);
    assert.match(r.json.headers[0], /^WWW-Authenticate: Digest .*algorithm=SHA-256/);
    assert.match(r.json.headers[1], /^WWW-Authenticate: Digest .*algorithm=MD5/);
    assert.equal(r.json.header, r.json.headers[0]);
    for (const h of r.json.headers) assert.ok(!/[\r\n]/.test(h));
    assert.equal(challengeParams(r.json.header).realm, REALM);
  });

  test("INVITE without credentials from a device: 407 Proxy-Authenticate", async () => {
    const r = await call(w, "POST", "/auth", { token: tok.edge, body: { ...registerReq("1001"), method: "INVITE", ruri: `sip:1002@${REALM}` } });
    assert.equal(r.json.code, 407);
    assert.match(r.json.header, /^Proxy-Authenticate: Digest /);
  });

  test("correct digest (MD5 and SHA-256) → ok with the canonical AOR", async () => {
    for (const alg of ["MD5", "SHA-256"]) {
      const r = await authOk("1001", "pw-1001-secret", alg);
      assert.deepEqual(r.json, { result: "ok", accountId: acc.id, deviceId: dev1001.id, userId: r.json.userId, extension: "1001", aor: `sip:1001@${REALM}` }, alg);
      assert.match(r.json.userId, /^usr_/);
    }
  });

  test("form-encoded requests work like JSON", async () => {
    const ch = await call(w, "POST", "/auth", { token: tok.edge, form: registerReq("1002") });
    assert.equal(ch.json.result, "challenge");
    const authorization = digestAnswer(ch.json.headers[1], { user: "1002", password: "pw-1002-secret", method: "REGISTER", uri: `sip:${REALM}` });
    const ok = await call(w, "POST", "/auth", { token: tok.edge, form: registerReq("1002", { authorization }) });
    assert.equal(ok.json.result, "ok");
    assert.equal(ok.json.aor, `sip:1002@${REALM}`);
  });

  test("wrong password and unknown user are indistinguishable", async () => {
    const ch = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001") });
    const wrong = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { sourceIp: "203.0.113.21", authorization: digestAnswer(ch.json.headers[1], { user: "1001", password: "nope", method: "REGISTER", uri: `sip:${REALM}` }) }) });
    const unknown = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("7777", { sourceIp: "203.0.113.22", authorization: digestAnswer(ch.json.headers[1], { user: "7777", password: "nope", method: "REGISTER", uri: `sip:${REALM}` }) }) });
    assert.equal(wrong.status, 200);
    assert.deepEqual(wrong.json, { result: "reject", code: 403, reason: "Forbidden" });
    assert.equal(wrong.text, unknown.text);
  });

  test("a replayed nc is rejected; a higher nc on the same nonce is accepted", async () => {
    const ch = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001") });
    const answer = (nc) => digestAnswer(ch.json.headers[0], { user: "1001", password: "pw-1001-secret", method: "REGISTER", uri: `sip:${REALM}`, nc });
    assert.equal((await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { authorization: answer(1) }) })).json.result, "ok");
    const replay = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { authorization: answer(1) }) });
    assert.equal(replay.json.result, "reject");
    assert.equal((await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { authorization: answer(0x10) }) })).json.result, "ok");
    assert.equal((await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { authorization: answer(0x0f) }) })).json.result, "reject");
    assert.equal((await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { authorization: answer(0x100) }) })).json.result, "ok");
  });

  test("disabled device is rejected; REGISTER for another To user is rejected", async () => {
    const d = await authOk("1003", "pw-1003-secret", "MD5");
    assert.equal(d.json.result, "reject");
    const ch = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001") });
    const authorization = digestAnswer(ch.json.headers[0], { user: "1001", password: "pw-1001-secret", method: "REGISTER", uri: `sip:${REALM}` });
    const r = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1002", { fromUser: "1001", authorization }) });
    assert.equal(r.json.result, "reject");
  });

  test("INVITE from a trusted carrier address (and port) needs no credentials", async () => {
    const body = { ...registerReq("+15551234567"), method: "INVITE", sourceIp: "198.51.100.7", sourcePort: 5060, fromDomain: "carrier.example" };
    const r = await call(w, "POST", "/auth", { token: tok.edge, body });
    assert.deepEqual(r.json, { result: "ok", trust: "carrier", carrierId: carrier.id });
    const other = await call(w, "POST", "/auth", { token: tok.edge, body: { ...body, sourcePort: 5080 } });
    assert.equal(other.json.result, "challenge");
  });

  test("five failures from one address answer a ban", async () => {
    const ch = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001") });
    const authorization = digestAnswer(ch.json.headers[1], { user: "1001", password: "guess", method: "REGISTER", uri: `sip:${REALM}` });
    const bans = [];
    for (let i = 0; i < 5; i++) {
      const r = await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { sourceIp: "192.0.2.66", authorization }) });
      assert.equal(r.json.result, "reject");
      bans.push(r.json.ban);
    }
    assert.deepEqual(bans.slice(0, 4), [undefined, undefined, undefined, undefined]);
    assert.ok(bans[4] >= 600, `ban ${bans[4]}`);
  });
});

describe("/route and concurrency", () => {
  test("device → extension is proxied to the same AOR /auth returns, taking no slot", async () => {
    const r = await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("int-1", "1002") });
    assert.deepEqual(r.json, { rtjson: { action: "proxy", aor: `sip:1002@${REALM}`, account_id: acc.id, direction: "internal" } });
    const cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.equal(cac.json.active, 0);
  });

  test("carrier → DID → flow on the media node with X-Account-Id / X-Flow-Id", async () => {
    const r = await call(w, "POST", "/route", { token: tok.edge, body: { callId: "in-1", from: "sip:+15559870000@carrier.example", to: "sip:+15550001000@x", ruri: "sip:+15550001000@x", sourceIp: "198.51.100.7", sourcePort: 5060, carrierId: carrier.id } });
    const rt = r.json.rtjson;
    assert.equal(rt.action, "flow");
    assert.equal(rt.account_id, acc.id);
    assert.equal(rt.flow_id, flow.id);
    assert.equal(rt.routes[0].uri, "sip:+15550001000@127.0.0.1:5070");
    assert.equal(rt.routes[0].headers.extra, `X-Account-Id: ${acc.id}\r\nX-Flow-Id: ${flow.id}\r\n`);
    await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId: "in-1", accountId: acc.id, state: "terminated", reason: "ended", duration: 3 } });
  });

  test("outbound: trunks by priority, account caller id; international blocked by policy", async () => {
    const r = await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("out-1", "5557654321") });
    const rt = r.json.rtjson;
    assert.equal(rt.action, "outbound");
    assert.equal(rt.routing, "serial");
    assert.deepEqual(rt.routes.map((x) => x.uri), ["sip:+15557654321@127.0.0.1:5090", "sip:+15557654321@127.0.0.1:5091"]);
    assert.equal(rt.routes[0].headers.from.uri, `sip:+15550001000@${REALM}`);
    assert.ok(rt.routes[0].fr_inv_timer > 0);
    const intl = await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("out-intl", "011442079460000") });
    assert.equal(intl.json.rtjson.action, "reject");
    assert.equal(intl.json.rtjson.code, 403);
    const unknown = await call(w, "POST", "/route", { token: tok.edge, body: { callId: "in-x", to: "sip:+15550009999@x", ruri: "sip:+15550009999@x", carrierId: carrier.id } });
    assert.deepEqual(unknown.json.rtjson, { action: "reject", code: 404, reason: "Not Found" });
    await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId: "out-1", accountId: acc.id, state: "terminated", reason: "failed" } });
  });

  test("explain=1 shows the rule without taking a slot", async () => {
    const r = await call(w, "POST", "/route?explain=1", { token: tok.edge, body: routeFromDevice("exp-1", "5557654321") });
    assert.equal(r.json.rtjson.action, "outbound");
    assert.equal(r.json.explain.direction, "outbound");
    assert.equal(r.json.explain.cac.taken, false);
    assert.match(r.json.explain.rule, /primary/);
    const cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.ok(!cac.json.calls.some((c) => c.callId === "exp-1"));
  });

  test("limit 2: the third call is 486; terminated releases once; the slot is reusable", async () => {
    const dialog = (callId, state, reason = "ended") => call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId, accountId: acc.id, state, reason, from: "sip:1001@x", to: "sip:+15557654321@x", direction: "outbound", duration: state === "terminated" ? 4 : 0 } });
    assert.equal((await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("cac-1", "5557654321") })).json.rtjson.action, "outbound");
    assert.equal((await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("cac-1", "5557654321") })).json.rtjson.action, "outbound", "a re-route of the same Call-ID takes no second slot");
    assert.equal((await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("cac-2", "5557654321") })).json.rtjson.action, "outbound");
    const third = await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("cac-3", "5557654321") });
    assert.equal(third.json.rtjson.code, 486);
    let cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.equal(cac.json.active, 2);
    assert.equal(cac.json.limit, 2);
    assert.equal((await dialog("cac-1", "confirmed")).json.confirmed, true);
    const first = await dialog("cac-1", "terminated");
    const dup = await dialog("cac-1", "terminated");
    assert.equal(first.json.released, true);
    assert.equal(dup.json.released, false);
    cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.equal(cac.json.active, 1);
    assert.equal((await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("cac-4", "5557654321") })).json.rtjson.action, "outbound");
    // A CDR per Call-ID, once.
    const rows = w.d1("SELECT call_id, duration_s, disposition FROM cdrs WHERE call_id = 'cac-1'");
    assert.equal(rows.length, 1);
    assert.equal(rows[0].duration_s, 4);
    assert.equal(rows[0].disposition, "answered");
    // A media node only judges calls pinned to it (none here): it releases nothing, and must say who it is.
    assert.equal((await call(w, "POST", "/cac/reconcile", { token: tok.media, body: { accountId: acc.id, liveCallIds: [], graceSeconds: 0 } })).status, 400);
    const fromNode = await call(w, "POST", "/cac/reconcile", { token: tok.media, body: { accountId: acc.id, node: "fs-9", liveCallIds: [], graceSeconds: 0 } });
    assert.deepEqual(fromNode.json.released, []);
    // The SIP edge sees every call: only cac-4 is live; cac-2 leaked.
    const rec = await call(w, "POST", "/cac/reconcile", { token: tok.edge, body: { accountId: acc.id, liveCallIds: ["cac-4"], graceSeconds: 0 } });
    assert.deepEqual(rec.json.released.map((l) => l.callId), ["cac-2"]);
    // Operator reset records who did it.
    const reset = await call(w, "POST", "/cac/reset", { token: tok.op, body: { accountId: acc.id } });
    assert.equal(reset.json.cleared, 1);
    cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.equal(cac.json.active, 0);
    assert.match(cac.json.lastReset.actor, /^cred_/);
    assert.equal(w.d1("SELECT count(*) AS n FROM audit_log WHERE action = 'cac.reset'")[0].n, 1);
    assert.equal((await call(w, "POST", "/cac/reset", { token: tok.edge, body: { accountId: acc.id } })).status, 403);
  });

  test("registrations are mirrored and expire with expires=0", async () => {
    const ev = { type: "register", accountId: acc.id, deviceId: dev1001.id, aor: `sip:1001@${REALM}`, contact: "sip:1001@203.0.113.10:5060", expires: 300, sourceIp: "203.0.113.10", sourcePort: 5060, userAgent: "it" };
    assert.equal((await call(w, "POST", "/presence/event", { token: tok.edge, body: ev })).status, 200);
    let cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.equal(cac.json.registrations.length, 1);
    await call(w, "POST", "/presence/event", { token: tok.edge, body: { ...ev, expires: 0 } });
    cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: tok.op });
    assert.equal(cac.json.registrations.length, 0);
  });

  test("suspended accounts neither call nor receive; bad route requests are 400", async () => {
    const r = await call(w, "POST", "/route", { token: tok.edge, body: routeFromDevice("s-1", "5557654321", acc2.id) });
    assert.equal(r.json.rtjson.code, 403);
    for (const body of [{}, { callId: "x", to: "sip:1@x" }, { ...routeFromDevice("x", "1002"), accountId: "acc_bogus" }, { ...routeFromDevice("x", "1002"), carrierId: carrier.id }]) {
      const b = await call(w, "POST", "/route", { token: tok.edge, body });
      assert.equal(b.status, 400, JSON.stringify(body));
    }
    const badEvent = await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId: "x", accountId: acc.id, state: "weird" } });
    assert.equal(badEvent.status, 400);
    assert.equal((await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "nope" } })).status, 400);
  });
});

describe("call trace", () => {
  test("the auth and route decisions, the answer and the end of a call read as one timeline", async () => {
    const id = "trace-call-1";
    const inv = { method: "INVITE", callId: id, sourceIp: "198.51.100.7", sourcePort: 5060, fromUser: "+15559870000", fromDomain: "carrier.example", toUser: "+15550001000", toDomain: "x", ruri: "sip:+15550001000@x" };
    assert.equal((await call(w, "POST", "/auth", { token: tok.edge, body: inv })).json.trust, "carrier");
    assert.equal((await call(w, "POST", "/route", { token: tok.edge, body: { callId: id, from: "sip:+15559870000@carrier.example", ruri: "sip:+15550001000@x", carrierId: carrier.id } })).json.rtjson.action, "flow");
    await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId: id, accountId: acc.id, state: "confirmed" } });
    await call(w, "POST", "/presence/event", { token: tok.edge, body: { type: "dialog", callId: id, accountId: acc.id, state: "terminated", reason: "ended", duration: 42 } });
    let t;
    for (let i = 0; i < 40; i++) { // trace writes happen after each answer: poll, bounded
      t = await call(w, "GET", `/calls/${id}/trace`, { token: tok.op });
      if (t.status === 200 && t.json.entries.length >= 4) break;
      await sleep(100);
    }
    assert.equal(t.status, 200, t.text);
    assert.deepEqual(t.json.entries.map((e) => e.kind), ["auth", "route", "dialog", "disposition"]);
    assert.equal(t.json.accountId, acc.id);
    assert.match(t.json.entries[0].summary, /INVITE from 198\.51\.100\.7:5060 → ok: carrier/);
    assert.match(t.json.entries[1].summary, /inbound call \+15550001000 → flow: number \+15550001000/);
    assert.match(t.json.disposition, /terminated \(ended\) after 42 s; concurrency slot released/);
    const text = await call(w, "GET", `/calls/${id}/trace?format=text`, { token: tok.op });
    assert.match(text.headers.get("content-type"), /text\/plain/);
    assert.match(text.text, /^call trace-call-1 \(account acc_/);
    assert.equal((await call(w, "GET", "/calls/no-such-call/trace", { token: tok.op })).status, 404);
    assert.equal((await call(w, "GET", `/calls/${id}/trace`, { token: tok.edge })).status, 403);
    // REGISTERs are not calls: no trace.
    await call(w, "POST", "/auth", { token: tok.edge, body: registerReq("1001", { callId: "reg-not-traced" }) });
    await sleep(300);
    assert.equal((await call(w, "GET", "/calls/reg-not-traced/trace", { token: tok.op })).status, 404);
  });
});
