// The ACD through the real Worker under wrangler dev: agents log in / pause / log out and show
// on /agent and /presence/users, reachability follows registrations, callers are enqueued and
// offered to agents, the answer hooks are race-free (confirm: stale epoch → 409; ring_all
// claim: first wins, the others get 409 and are released), and the Durable Object's alarm
// drives offer timeouts and wrap-up. Queues and members are provisioned with the real CLI.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { startWorker, newToken, call, ROOT } from "./harness.mjs";

const PORT = Number(process.env.IT_ACD_PORT || 8806);
const REALM = "acd.sip.test";
let w, op, media, edge, agentApp, otherApp, acc, other;
const users = {};
const devices = {};
let support, ringall;

before(() => {
  w = startWorker(process.env.IT_ACD_PORT ? `it-acd-${PORT}` : "it-acd", PORT, ["CONFIG_CACHE_TTL_SECONDS:0"]);
  [op, media, edge, agentApp, otherApp] = [newToken(), newToken(), newToken(), newToken(), newToken()];
  acc = w.admin("account", "create", "--name", "ACD", "--domain", REALM, "--max-calls", "50");
  other = w.admin("account", "create", "--name", "Other", "--domain", "other.acd.test");
  w.admin("credential", "create", "--name", "ops", "--role", "operator", "--token", op);
  w.admin("credential", "create", "--name", "fs", "--role", "media-node", "--token", media);
  w.admin("credential", "create", "--name", "edge", "--role", "sip-edge", "--token", edge);
  w.admin("credential", "create", "--name", "app", "--role", "agent-app", "--account", acc.id, "--token", agentApp);
  w.admin("credential", "create", "--name", "app2", "--role", "agent-app", "--account", other.id, "--token", otherApp);
  for (const ext of ["3001", "3002", "3003", "3004", "3005"]) {
    users[ext] = w.admin("user", "create", "--account", acc.id, "--extension", ext, "--name", `Agent ${ext}`);
    devices[ext] = w.admin("device", "create", "--account", acc.id, "--extension", ext, "--username", ext, "--password", `secret-${ext}-x`);
  }
  // Short offer timeout and wrap-up so the alarm-driven paths run in seconds.
  support = w.admin("queue", "create", "--account", acc.id, "--name", "support", "--strategy", "longest_idle",
    "--offer-timeout", "2", "--wrapup", "1", "--no-answer-penalty", "30");
  ringall = w.admin("queue", "create", "--account", acc.id, "--name", "ringall", "--strategy", "ring_all", "--wrapup", "0");
  w.admin("queue", "add-member", "--queue", support.id, "--user", users["3001"].id);
  w.admin("queue", "add-member", "--queue", support.id, "--user", users["3002"].id);
  w.admin("queue", "add-member", "--queue", ringall.id, "--user", users["3003"].id);
  w.admin("queue", "add-member", "--queue", ringall.id, "--user", users["3004"].id);
  w.admin("queue", "add-member", "--queue", support.id, "--user", users["3005"].id);
});
after(() => w?.stop());

const agentPost = (ext, event, extra = {}, token = agentApp) =>
  call(w, "POST", "/agent", { token, body: { accountId: acc.id, userId: users[ext].id, event, ...extra } });
const agentGet = async (ext, token = agentApp) => {
  const r = await call(w, "GET", `/agent?accountId=${acc.id}&userId=${users[ext].id}`, { token });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const roster = async () => {
  const r = await call(w, "GET", `/presence/users?accountId=${acc.id}`, { token: agentApp });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const register = (ext, expires = 300) =>
  call(w, "POST", "/presence/event", { token: edge, body: { type: "register", accountId: acc.id, deviceId: devices[ext].id, aor: `sip:${ext}@${REALM}`, contact: `sip:${ext}@192.0.2.10:5060`, expires } });
const enqueue = (callId, queue, extra = {}) => call(w, "POST", "/queue/enqueue", { token: media, body: { accountId: acc.id, callId, queue, ...extra } });
const status = async (callId) => {
  const r = await call(w, "GET", `/queue/status?accountId=${acc.id}&callId=${encodeURIComponent(callId)}`, { token: media });
  assert.equal(r.status, 200, r.text);
  return r.json;
};
const hook = (path, token = media) => call(w, "GET", path, { token });

/** Poll (bounded: 40 × 250 ms) until `f()` returns a truthy value; returns the last value. */
async function until(f, what) {
  let v;
  for (let i = 0; i < 40; i++) {
    v = await f();
    if (v.ok) return v.value;
    await sleep(250);
  }
  assert.fail(`timed out waiting for ${what}: ${JSON.stringify(v.value)}`);
}

describe("agents", () => {
  test("login, pause, unpause and logout show on /agent and /presence/users", async () => {
    let a = await agentGet("3005");
    assert.deepEqual([a.status, a.reachable, a.queues, a.accountId], ["logged_out", false, [], acc.id]);

    let r = await agentPost("3005", "login", { queues: ["support"] });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.agent.status, "available");
    assert.deepEqual(r.json.agent.queues.map((q) => [q.queue, q.queueName, q.tier]), [[support.id, "support", 1]]);
    assert.equal(r.json.agent.reachable, false, "no registration yet");

    let p = await roster();
    assert.deepEqual(p.users.map((u) => u.agent.userId), ["3001", "3002", "3003", "3004", "3005"].map((e) => users[e].id), "roster in extension order");
    assert.deepEqual(p.users.map((u) => u.name), ["3001", "3002", "3003", "3004", "3005"].map((e) => `Agent ${e}`));
    assert.deepEqual([p.tiles.total, p.tiles.available, p.tiles.loggedOut, p.tiles.unreachable], [5, 1, 4, 1]);
    assert.deepEqual(p.queues.map((q) => q.queueName).sort(), ["ringall", "support"]);

    r = await agentPost("3005", "pause", { reason: "lunch" });
    assert.equal(r.status, 200, r.text);
    a = await agentGet("3005");
    assert.deepEqual([a.status, a.reason], ["paused", "lunch"]);
    p = await roster();
    assert.deepEqual([p.tiles.paused, p.tiles.available], [1, 0]);

    assert.equal((await agentPost("3005", "unpause")).json.agent.status, "available");
    assert.equal((await agentGet("3005")).status, "available");
    assert.equal((await agentPost("3005", "logout")).json.agent.status, "logged_out");
    a = await agentGet("3005");
    assert.deepEqual([a.status, a.queues], ["logged_out", []]);
    assert.equal((await roster()).tiles.loggedOut, 5);

    // The same through /presence/event; `queues` absent = every queue the user is a member of.
    r = await call(w, "POST", "/presence/event", { token: agentApp, body: { type: "agent", accountId: acc.id, userId: users["3005"].id, event: "login" } });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual(r.json.agent.queues.map((q) => q.queue), [support.id]);
    // …and a form-encoded body with the queue by id.
    r = await call(w, "POST", "/agent", { token: op, form: { accountId: acc.id, userId: users["3005"].id, event: "login", queues: support.id } });
    assert.equal(r.status, 200, r.text);
    assert.equal((await agentPost("3005", "logout")).status, 200);
  });

  test("agent errors: 400 / 403 / 404 / 409 with the error envelope", async () => {
    const cases = [
      [await agentPost("3005", "dance"), 400],
      [await agentPost("3005", "logout", { queues: ["support"] }), 400],
      [await agentPost("3005", "pause"), 409, /log in first/],
      [await agentPost("3005", "unpause"), 409],
      [await agentPost("3005", "login", { queues: ["nope"] }), 404, /unknown queue/],
      [await agentPost("3005", "login", { queues: ["ringall"] }), 403, /not a member/],
      [await call(w, "POST", "/agent", { token: agentApp, body: { accountId: acc.id, userId: "usr_01jf18ah3jeb5w6dfp27sgjsbt", event: "login" } }), 404],
      [await agentPost("3005", "login", {}, otherApp), 403, /another account/],
      [await agentPost("3005", "login", {}, media), 403],
      [await call(w, "GET", `/agent?accountId=${acc.id}&userId=${users["3005"].id}`, { token: edge }), 403],
      [await call(w, "POST", "/presence/event", { token: agentApp, body: { type: "register", accountId: acc.id, deviceId: devices["3005"].id, aor: "sip:x@y", contact: "sip:x@z", expires: 60 } }), 403],
      [await call(w, "POST", "/presence/event", { token: edge, body: { type: "agent", accountId: acc.id, userId: users["3005"].id, event: "login" } }), 403],
      [await call(w, "GET", `/presence/users?accountId=${other.id}`, { token: agentApp }), 403],
      [await call(w, "DELETE", "/agent", { token: op }), 405],
    ];
    for (const [r, code, re] of cases) {
      assert.equal(r.status, code, r.text);
      assert.equal(r.json.status, "error", r.text);
      if (re) assert.match(r.json.message, re);
    }
  });

  test("reachable follows the user's device registrations", async () => {
    assert.equal((await agentPost("3005", "login")).status, 200);
    assert.equal((await agentGet("3005")).reachable, false);
    const r = await register("3005", 300);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.userId, r.json.reachable], [users["3005"].id, true]);
    assert.equal((await agentGet("3005")).reachable, true);
    assert.equal((await roster()).tiles.unreachable, 0);
    assert.equal((await register("3005", 0)).json.reachable, false, "unregister");
    assert.equal((await agentGet("3005")).reachable, false);
    assert.equal((await agentPost("3005", "logout")).status, 200);
  });
});

describe("queues", () => {
  test("offers, confirm (stale epoch → 409), offer timeout → next agent, wrap-up → available, positions", async () => {
    for (const ext of ["3001", "3002"]) assert.equal((await register(ext)).status, 200);
    assert.equal((await agentPost("3001", "login")).status, 200);
    await sleep(20); // 3001 has been idle longer: longest_idle offers it the first caller
    assert.equal((await agentPost("3002", "login")).status, 200);

    let r = await enqueue("q-c1@test", "support");
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.result, r.json.queue, r.json.queueName, r.json.position], ["queued", support.id, "support", 1]);
    const o1 = r.json.offer;
    assert.deepEqual([o1.agents, o1.ringAll, o1.timeoutSecs], [[users["3001"].id], false, 2]);
    assert.equal(o1.hooks.confirm, `/agent/confirm/${acc.id}/${o1.leaseId}/${o1.epoch}`);
    r = await enqueue("q-c2@test", "support");
    const o2 = r.json.offer;
    assert.deepEqual(o2.agents, [users["3002"].id]);
    assert.equal((await agentGet("3001")).state.kind, "ringing");

    // Answer hooks are for media nodes.
    assert.equal((await hook(o1.hooks.confirm, agentApp)).status, 403);
    // The agent answers: connected; a retried hook is the same answer; a stale epoch is 409.
    r = await hook(o1.hooks.confirm);
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.connected.callId, r.json.connected.agent, r.json.connected.repeated], ["q-c1@test", users["3001"].id, false]);
    assert.equal((await hook(o1.hooks.confirm)).json.connected.repeated, true);
    r = await hook(`/agent/confirm/${acc.id}/${o2.leaseId}/${o2.epoch - 1}`);
    assert.equal(r.status, 409, r.text);
    assert.match(r.json.message, /no longer current/);
    assert.equal((await hook(`/agent/confirm/${acc.id}/lease_nope/1`)).status, 409);
    assert.equal((await hook(`/agent/confirm/${acc.id}/${o2.leaseId}/x`)).status, 400);
    const a1 = await agentGet("3001");
    assert.deepEqual([a1.status, a1.state.kind, a1.state.callId], ["on_call", "in_call", "q-c1@test"]);
    assert.equal((await status("q-c1@test")).state, "connected");

    // A third caller waits behind the ringing second one.
    r = await enqueue("q-c3@test", "support");
    assert.deepEqual([r.json.position, r.json.waiting, r.json.offer], [2, 2, null]);
    let s3 = await status("q-c3@test");
    assert.deepEqual([s3.state, s3.position, s3.waiting, s3.ringing], ["waiting", 2, 2, false]);
    assert.equal((await enqueue("q-c3@test", "support")).json.repeated, true, "a retried enqueue answers the current place");

    // Nobody answers q-c2: after 2 s (+2 s grace) the alarm ends the offer; 3002 is skipped.
    const s2 = await until(async () => {
      const s = await status("q-c2@test");
      return { ok: !s.ringing, value: s };
    }, "q-c2's offer to time out");
    assert.deepEqual([s2.state, s2.position, s2.offer], ["waiting", 1, null]);
    const a2 = await agentGet("3002");
    assert.equal(a2.status, "available");
    assert.ok(a2.state.skippedUntilMs > Date.now() + 20_000, JSON.stringify(a2.state));
    assert.equal(a2.noAnswers, 1);
    assert.equal((await hook(o2.hooks.confirm)).status, 409, "the rung-out lease cannot be answered");

    // The first call ends: 3001 wraps up (1 s), then takes q-c2 (first in line), not q-c3.
    r = await call(w, "POST", "/queue/end", { token: media, body: { accountId: acc.id, callId: "q-c1@test" } });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.ended.end.was, "completed");
    assert.equal((await agentGet("3001")).status, "wrap_up");
    const again = await until(async () => {
      const s = await status("q-c2@test");
      return { ok: s.ringing, value: s };
    }, "q-c2 to be offered to the next agent");
    assert.deepEqual(again.offer.agents, [users["3001"].id]);
    assert.equal((await agentGet("3001")).status, "available");
    s3 = await status("q-c3@test");
    assert.deepEqual([s3.position, s3.ringing], [2, false]);

    // The caller of q-c3 hangs up (dialog terminated from the SIP edge): counted abandoned.
    r = await call(w, "POST", "/presence/event", { token: edge, body: { type: "dialog", accountId: acc.id, callId: "q-c3@test", state: "terminated", reason: "ended" } });
    assert.equal(r.status, 200, r.text);
    s3 = await status("q-c3@test");
    assert.deepEqual([s3.state, s3.outcome], ["left", "abandoned"]);
    const q = (await roster()).queues.find((x) => x.queue === support.id);
    assert.deepEqual([q.counters.entered, q.counters.answered, q.counters.abandoned, q.waiting], [3, 1, 1, 1]);

    // Clean up: q-c2 answered then ended.
    assert.equal((await hook(again.offer.hooks.confirm)).status, 200);
    assert.equal((await call(w, "POST", "/queue/end", { token: media, body: { accountId: acc.id, callId: "q-c2@test" } })).status, 200);
  });

  test("ring_all: the first claim wins, the other agent gets 409 and is released", async () => {
    for (const ext of ["3003", "3004"]) {
      assert.equal((await register(ext)).status, 200);
      assert.equal((await agentPost(ext, "login", { queues: ["ringall"] })).status, 200);
    }
    const r = await enqueue("ra+1@test", "ringall", { priority: 5 });
    assert.equal(r.status, 200, r.text);
    const o = r.json.offer;
    assert.equal(o.ringAll, true);
    assert.deepEqual(o.agents.sort(), [users["3003"].id, users["3004"].id].sort());
    for (const ext of ["3003", "3004"]) assert.equal((await agentGet(ext)).state.kind, "ringing");
    const p = await roster();
    assert.equal(p.tiles.ringing, 2);

    const win = await hook(o.hooks.claim[users["3004"].id]);
    assert.equal(win.status, 200, win.text);
    assert.deepEqual([win.json.callId, win.json.connected.agent, win.json.connected.callId], ["ra+1@test", users["3004"].id, "ra+1@test"]);
    assert.deepEqual(win.json.effects.map((e) => [e.type, e.reason, e.agents]), [["offer_ended", "answered_elsewhere", [users["3003"].id]]]);
    const lose = await hook(o.hooks.claim[users["3003"].id]);
    assert.equal(lose.status, 409, lose.text);
    assert.match(lose.json.message, /already answered/);
    const a3 = await agentGet("3003");
    assert.deepEqual([a3.status, a3.state.kind], ["available", "idle"]);
    assert.equal((await agentGet("3004")).status, "on_call");
    assert.equal((await hook(o.hooks.claim[users["3004"].id])).json.connected.repeated, true);

    // The call ends with a terminated dialog: no wrap-up on this queue → available at once.
    const end = await call(w, "POST", "/presence/event", { token: edge, body: { type: "dialog", accountId: acc.id, callId: "ra+1@test", state: "terminated", reason: "ended" } });
    assert.equal(end.status, 200, end.text);
    assert.equal((await agentGet("3004")).status, "available");
    const s = await status("ra+1@test");
    assert.deepEqual([s.state, s.outcome, s.agent], ["left", "answered", users["3004"].id]);
  });

  test("queue endpoint errors", async () => {
    const cases = [
      [await enqueue("x@test", "nope"), 404],
      [await enqueue("", "support"), 400],
      [await call(w, "POST", "/queue/enqueue", { token: agentApp, body: { accountId: acc.id, callId: "x@test", queue: "support" } }), 403],
      [await call(w, "GET", `/queue/status?accountId=${acc.id}&callId=never@test`, { token: media }), 404],
      [await call(w, "POST", "/queue/end", { token: media, body: { accountId: acc.id, callId: "never@test" } }), 404],
      [await hook(`/agent/claim/${acc.id}/${users["3003"].id}/never%40test`), 409],
      [await hook(`/agent/claim/${acc.id}`), 404],
    ];
    for (const [r, code] of cases) {
      assert.equal(r.status, code, r.text);
      assert.equal(r.json.status, "error", r.text);
    }
  });

  test("the ACD state survives a restart of the Worker (records reloaded from storage)", async () => {
    // Let the 1 s wrap-up of the support call end first, so nothing changes during the restart.
    const earlier = await until(async () => {
      const p = await roster();
      return { ok: p.tiles.wrapUp === 0, value: p };
    }, "wrap-ups to end");
    // Same state directory, new workerd process: the account object loads its `acd/` records.
    spawnSync(join(ROOT, "scripts/worker-down.sh"), [w.state], { timeout: 30_000 });
    const up = spawnSync(join(ROOT, "scripts/worker-up.sh"), ["--port", String(PORT), "--state", w.state, "--var", "CONFIG_CACHE_TTL_SECONDS:0"], { encoding: "utf8", timeout: 180_000 });
    assert.equal(up.status, 0, up.stderr);
    // The client's pooled keep-alive connections died with the old process: the first
    // requests may fail at the socket level; retry those (bounded).
    let later;
    for (let i = 0; i < 10 && !later; i++) {
      try { later = await roster(); } catch (e) { if (!/fetch failed/.test(String(e))) throw e; await sleep(200); }
    }
    assert.ok(later, "the restarted Worker answers");
    assert.deepEqual(later.users.map((u) => [u.userId, u.agent.status, u.agent.reachable, u.agent.queues.map((q) => q.queue)]),
      earlier.users.map((u) => [u.userId, u.agent.status, u.agent.reachable, u.agent.queues.map((q) => q.queue)]));
    assert.deepEqual(later.queues.map((q) => q.counters), earlier.queues.map((q) => q.counters));
    assert.ok(later.tiles.available >= 2, JSON.stringify(later.tiles));
    // And it keeps working: a new caller is offered at once.
    const r = await enqueue("after-restart@test", "ringall");
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.offer.ringAll, true);
    assert.equal((await call(w, "POST", "/queue/end", { token: media, body: { accountId: acc.id, callId: "after-restart@test" } })).json.ended.end.was, "abandoned");
  });
});
