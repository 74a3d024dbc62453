// Whole call flows through the real Worker under wrangler dev: /route hands a call to a flow,
// the "edge" (this test) runs /flow start → commands → outcomes → hangup, uploads the voicemail
// to R2 through the signed URL the record command carries, and the call's trace tells it all.
import { test, before, after, describe } from "node:test";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { startWorker, newToken, call, fetchRetry } from "./harness.mjs";

const PORT = Number(process.env.IT_FLOW_PORT || 8804);
const REALM = "flows.sip.test";
const DID = "+15550002000";
let w, op, media, edge, acc, other, bob, flow, otherFlow, carrier;

function ivr(bobUserId, welcome = "Welcome to the flow test.") {
  return {
    version: 1, start: "welcome", nodes: {
      welcome: { type: "play", tts: { text: welcome }, next: "main" },
      main: { type: "menu", prompt: { tts: { text: "Press 2 for Bob, 3 for voicemail." } }, options: { 2: "bob", 3: "voicemail" }, retries: 2,
        invalidPrompt: { tts: { text: "Not a valid choice." } }, fallback: "voicemail" },
      bob: { type: "dial", targets: [{ user: bobUserId }], timeoutSecs: 20, on: { answered: "bye" }, next: "voicemail" },
      voicemail: { type: "record", prompt: { tts: { text: "Leave a message." } }, maxSecs: 60, on: { recorded: "thanks" }, next: "bye" },
      thanks: { type: "play", tts: { text: "Thanks, goodbye." }, next: "bye" },
      bye: { type: "hangup" },
    },
  };
}

const flowPost = (body, token = media) => call(w, "POST", "/flow", { token, body });
const step = (callId, seq, outcome, data) => flowPost({ callId, seq, outcome, ...(data ? { data } : {}) });

before(() => {
  w = startWorker("it-flow", PORT, ["CONFIG_CACHE_TTL_SECONDS:0", "MEDIA_NODE_ALLOWLIST:127.0.0.1/32"]);
  [op, media, edge] = [newToken(), newToken(), newToken()];
  w.admin("credential", "create", "--name", "ops", "--role", "operator", "--token", op);
  w.admin("credential", "create", "--name", "fs", "--role", "media-node", "--token", media);
  w.admin("credential", "create", "--name", "edge", "--role", "sip-edge", "--token", edge);
  acc = w.admin("account", "create", "--name", "Flows", "--domain", REALM, "--max-calls", "5");
  w.admin("user", "create", "--account", acc.id, "--extension", "1001");
  bob = w.admin("user", "create", "--account", acc.id, "--extension", "1002", "--name", "Bob");
  w.admin("device", "create", "--account", acc.id, "--extension", "1002", "--username", "1002", "--password", "bob-secret-1");
  const f = join(w.state, "ivr.json");
  writeFileSync(f, JSON.stringify(ivr(bob.id)));
  flow = w.admin("flow", "create", "--account", acc.id, "--name", "ivr", "--file", f);
  w.admin("number", "create", "--account", acc.id, "--e164", DID, "--target", `flow:${flow.id}`);
  carrier = w.admin("carrier", "create", "--name", "c", "--address", "198.51.100.0/24");
  w.admin("media-node", "create", "--name", "fs-1", "--host", "127.0.0.1", "--port", "5070");
  other = w.admin("account", "create", "--name", "Other", "--domain", "other.flows.test");
  const g = join(w.state, "other.json");
  writeFileSync(g, JSON.stringify({ version: 1, start: "bye", nodes: { bye: { type: "hangup" } } }));
  otherFlow = w.admin("flow", "create", "--account", other.id, "--name", "x", "--file", g);
});
after(() => w?.stop());

async function routeIn(callId) {
  const r = await call(w, "POST", "/route", { token: edge, body: { callId, from: "sip:+15559990000@carrier", ruri: `sip:${DID}@x`, carrierId: carrier.id } });
  assert.equal(r.json.rtjson.action, "flow", r.text);
  return r.json.rtjson;
}

describe("/flow", () => {
  test("a call from route to voicemail to hangup, with the recording in R2 and a readable trace", async () => {
    const id = "flow-call-1@test";
    const rt = await routeIn(id);
    let r = await flowPost({ callId: id, accountId: rt.account_id, flowId: rt.flow_id, vars: rt.vars });
    assert.equal(r.status, 200, r.text);
    assert.deepEqual([r.json.seq, r.json.command, r.json.media[0].text], [1, "play", "Welcome to the flow test."]);
    r = await step(id, 1, "played");
    assert.deepEqual([r.json.seq, r.json.command, r.json.attempt], [2, "gather", 1]);
    r = await step(id, 2, "digit:9");
    assert.equal(r.json.command, "gather");
    assert.equal(r.json.attempt, 2);
    assert.equal(r.json.prompts[0].text, "Not a valid choice.");
    r = await step(id, 3, "digit:3");
    assert.equal(r.json.command, "record");
    const { key, uploadUrl } = r.json;
    assert.match(uploadUrl, new RegExp(`^http://127\\.0\\.0\\.1:${PORT}/media/${acc.id}/recordings/.+\\?exp=\\d+&sig=[0-9a-f]{64}$`));
    // The edge records and uploads with the signed URL it was given.
    const wav = Buffer.concat([Buffer.from("RIFF"), Buffer.alloc(2000, 3)]);
    const put = await fetchRetry(uploadUrl, { method: "PUT", headers: { authorization: `Bearer ${media}`, "content-type": "audio/wav", "x-call-id": id, "x-duration-seconds": "7" }, body: wav });
    assert.equal(put.status, 201, await put.text());
    // The same URL cannot be used to read it back (it is signed for PUT).
    assert.equal((await fetchRetry(uploadUrl, { headers: { authorization: `Bearer ${media}` } })).status, 403);
    r = await step(id, 4, `recorded:${key}`, { durationMs: 7000, bytes: wav.length });
    assert.equal(r.json.command, "play");
    r = await step(id, 5, "played");
    assert.deepEqual([r.json.command, r.json.done], ["hangup", false]);
    r = await step(id, 6, "hangup");
    assert.deepEqual([r.json.command, r.json.done], ["hangup", true]);
    // The recording is in R2 under the account; the lease is released; the trace reads through.
    const got = await fetchRetry(`${w.base}/media/${acc.id}/${key}`, { headers: { authorization: `Bearer ${op}` } });
    assert.deepEqual(Buffer.from(await got.arrayBuffer()), wav);
    const cac = await call(w, "GET", `/cac?accountId=${acc.id}`, { token: op });
    assert.ok(!cac.json.calls.some((c) => c.callId === id), JSON.stringify(cac.json.calls));
    let t;
    for (let i = 0; i < 30; i++) {
      t = await call(w, "GET", `/calls/${encodeURIComponent(id)}/trace?format=text`, { token: op });
      if (t.status === 200 && /recording stored/.test(t.text) && /flow ended/.test(t.text)) break;
      await sleep(100);
    }
    assert.match(t.text, /route\s+inbound call \+15550002000 → flow/);
    assert.match(t.text, /flow\.start\s+welcome: flow flow_\w+ v1 started/);
    assert.match(t.text, /flow\.outcome\s+#2 main: digit:9/);
    assert.match(t.text, /media\s+recording stored: acc_\w+\/recordings\/.+ \(2004 bytes, 7 s\)/);
    assert.match(t.text, /disposition\s+flow ended: completed; concurrency slot released/);
  });

  test("retries are idempotent; stale or foreign steps are refused", async () => {
    const id = "flow-call-2@test";
    let r = await flowPost({ callId: id, accountId: acc.id, flowId: flow.id });
    const again = await flowPost({ callId: id, accountId: acc.id, flowId: flow.id });
    assert.deepEqual(again.json, r.json, "a repeated start answers the first command again");
    r = await step(id, 1, "played");
    const retry = await step(id, 1, "played");
    assert.deepEqual(retry.json, r.json, "the same step again returns the same command");
    assert.equal((await step(id, 1, "hangup")).status, 409, "same seq, different outcome");
    assert.equal((await step(id, 5, "digit:2")).status, 409, "seq ahead");
    assert.equal((await step(id, 2, "played")).status, 400, "played does not answer a gather");
    assert.equal((await step(id, 2, "bogus")).status, 400);
    assert.equal((await step("no-such-call", 1, "played")).status, 404);
    assert.equal((await step(id, 2, "hangup")).json.done, true);
    assert.equal((await step(id, 3, "played")).status, 409, "after the end");
    assert.equal((await flowPost({ callId: "x", accountId: acc.id, flowId: flow.id }, edge)).status, 403, "sip-edge may not drive flows");
  });

  test("starting another account's flow is 403; an unknown flow 404", async () => {
    assert.equal((await flowPost({ callId: "f3", accountId: acc.id, flowId: otherFlow.id })).status, 403);
    assert.equal((await flowPost({ callId: "f4", accountId: acc.id, flowId: "flow_01jf18ah3jeb5w6dfp27sgjsbt" })).status, 404);
    assert.equal((await flowPost({ callId: "f5", accountId: "nope", flowId: flow.id })).status, 400);
  });

  test("dial rings only a registered user; unregistered goes on without ringing", async () => {
    const run = async (id) => {
      await flowPost({ callId: id, accountId: acc.id, flowId: flow.id });
      await step(id, 1, "played");
      return step(id, 2, "digit:2");
    };
    let r = await run("dial-1");
    assert.equal(r.json.command, "record", "Bob has no registration: the dial fails over to voicemail at once");
    await call(w, "POST", "/presence/event", { token: edge, body: { type: "register", accountId: acc.id, deviceId: "dev_01jf18ah3jeb5w6dfp27sgjsbt", aor: `sip:1002@${REALM}`, contact: "sip:1002@127.0.0.1:5090", expires: 300 } });
    r = await run("dial-2");
    assert.equal(r.json.command, "dial", r.text);
    assert.deepEqual(r.json.targets[0].uris, [`sip:1002@${REALM}`]);
    r = await step("dial-2", 3, "no-answer", { sipStatus: 480 });
    assert.equal(r.json.command, "record");
  });

  test("publishing a new version does not change running calls; new calls get it", async () => {
    const running = "pin-1";
    await flowPost({ callId: running, accountId: acc.id, flowId: flow.id });
    const f = join(w.state, "ivr2.json");
    writeFileSync(f, JSON.stringify(ivr(bob.id, "Version two.")));
    w.admin("flow", "publish", "--flow", flow.id, "--file", f);
    const fresh = await flowPost({ callId: "pin-2", accountId: acc.id, flowId: flow.id });
    assert.equal(fresh.json.media[0].text, "Version two.");
    // The running call keeps v1 to the end: its menu is v1's (both have the same menu; the
    // pinned version shows in its trace).
    const r = await step(running, 1, "played");
    assert.equal(r.json.command, "gather");
    const t = await call(w, "GET", `/calls/${running}/trace`, { token: op });
    assert.ok(t.json.entries.some((e) => /v1 started/.test(e.summary)), JSON.stringify(t.json.entries.map((e) => e.summary)));
    const t2 = await call(w, "GET", "/calls/pin-2/trace", { token: op });
    assert.ok(t2.json.entries.some((e) => /v2 started/.test(e.summary)));
  });
});

describe("every node type through /flow", () => {
  test("noop, set, branch (variable and calendar), play, pause, gather pattern, subflow, goto, conference, enqueue, dial, record, hangup", async () => {
    const week = Object.fromEntries(["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map((d) => [d, [["00:00", "24:00"]]]));
    const cal = w.admin("calendar", "create", "--account", acc.id, "--name", "always", "--time-zone", "America/New_York", "--weekly", JSON.stringify(week));
    const subFile = join(w.state, "sub.json");
    writeFileSync(subFile, JSON.stringify({ version: 1, start: "hello", nodes: { hello: { type: "play", tts: { text: "In the sub-flow ${lang}." } } } }));
    const sub = w.admin("flow", "create", "--account", acc.id, "--name", "sub", "--file", subFile);
    const all = {
      version: 1, start: "label", nodes: {
        label: { type: "noop", next: "setlang" },
        setlang: { type: "set", vars: { lang: "fr" }, next: "bylang" },
        bylang: { type: "branch", cases: [{ when: { var: "lang", equals: "fr" }, next: "bonjour" }], default: "hello" },
        hello: { type: "play", tts: { text: "Hello." }, next: "hours" },
        bonjour: { type: "play", tts: { text: "Bonjour." }, next: "hours" },
        hours: { type: "branch", cases: [{ when: { calendar: cal.id, is: "open" }, next: "wait" }], default: "bye" },
        wait: { type: "pause", ms: 500, next: "code" },
        code: { type: "gather", prompt: { tts: { text: "Enter your code." } }, maxDigits: 3, patterns: [{ pattern: "1XX", next: "sub" }], fallback: "bye" },
        sub: { type: "subflow", flow: sub.id, next: "jump" },
        jump: { type: "goto", target: "room" },
        room: { type: "conference", room: "standup", role: "moderator", next: "queue" },
        queue: { type: "enqueue", queue: "support", maxWaitSecs: 60, on: { answered: "bye" }, next: "ring" },
        ring: { type: "dial", targets: [{ sip: "sip:echo@127.0.0.1:5090" }], timeoutSecs: 10, on: { answered: "bye" }, next: "vm" },
        vm: { type: "record", maxSecs: 30, on: { recorded: "bye" }, next: "busy" },
        busy: { type: "hangup", cause: "busy", reason: "nobody took the call" },
        bye: { type: "hangup" },
      },
    };
    const f = join(w.state, "all.json");
    writeFileSync(f, JSON.stringify(all));
    const flowAll = w.admin("flow", "create", "--account", acc.id, "--name", "all", "--file", f);
    const id = "all-nodes@test";
    const expect = [
      [null, "play", (r) => assert.equal(r.media[0].text, "Bonjour.")],
      ["played", "noop", (r) => assert.equal(r.pauseMs, 500)],
      ["played", "gather", (r) => assert.equal(r.maxDigits, 3)],
      ["digits:123", "play", (r) => assert.equal(r.media[0].text, "In the sub-flow fr.")],
      ["played", "conference", (r) => assert.deepEqual([r.room, r.role], [`${acc.id}-standup`, "moderator"])],
      ["played", "enqueue", (r) => assert.deepEqual([r.queue, r.maxWaitSecs], ["support", 60])],
      ["queue:timeout", "dial", (r) => assert.deepEqual(r.targets[0].uris, ["sip:echo@127.0.0.1:5090"])],
      ["busy", "record", (r) => assert.match(r.uploadUrl, /\/media\/acc_\w+\/recordings\//)],
      ["no-input", "hangup", (r) => assert.deepEqual([r.cause, r.done], ["busy", false])],
      ["hangup", "hangup", (r) => assert.equal(r.done, true)],
    ];
    let seq = 0;
    for (const [outcome, command, check] of expect) {
      const r = outcome === null ? await flowPost({ callId: id, accountId: acc.id, flowId: flowAll.id }) : await step(id, seq, outcome);
      assert.equal(r.status, 200, `${outcome}: ${r.text}`);
      assert.equal(r.json.command, command, `after ${outcome}: ${r.text}`);
      check(r.json);
      seq = r.json.seq;
    }
    const t = await call(w, "GET", `/calls/${encodeURIComponent(id)}/trace`, { token: op });
    const kinds = new Set(t.json.entries.map((e) => e.kind));
    for (const k of ["flow.start", "flow.command", "flow.outcome", "flow.node", "disposition"]) assert.ok(kinds.has(k), `${k} in ${[...kinds]}`);
  });
});
