// Closed-loop HTTP load against a local Worker: C concurrent clients for D seconds per endpoint
// (bounded by a request cap), reporting req/s, p50, p99 and each endpoint's throughput ratio to
// /health measured in the same run. Usage: node bench/load.mjs BASE TOKEN DEMO_JSON [seconds] [concurrency]
import { readFileSync } from "node:fs";
import { createHash } from "node:crypto";

const [base, token, demoPath, secs = "5", conc = "8"] = process.argv.slice(2);
const DURATION_MS = Number(secs) * 1000;
const CONCURRENCY = Number(conc);
const MAX_REQUESTS = 200_000;
const demo = JSON.parse(readFileSync(demoPath, "utf8"));
const realm = "acme.sip.io";
const H = (s) => createHash("md5").update(s).digest("hex");

async function post(path, body) {
  const r = await fetch(base + path, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  return r.json();
}

// /auth with a valid digest: one nonce, a strictly increasing nc per request (the full path:
// parse, D1-cached device, verify, nonce-count check in the account Durable Object).
const reg = { method: "REGISTER", callId: "bench", sourceIp: "127.0.0.1", sourcePort: 5060, fromUser: "1001", fromDomain: realm, toUser: "1001", toDomain: realm, ruri: `sip:${realm}` };
const ch = await post("/auth", reg);
const md5Line = ch.headers.find((h) => h.includes("algorithm=MD5"));
const nonce = /nonce="([^"]+)"/.exec(md5Line)[1];
const ha1 = H(`1001:${realm}:acme-1001-secret`);
const ha2 = H(`REGISTER:sip:${realm}`);
let nc = 0;
function authBody() {
  nc += 1;
  const ncHex = nc.toString(16).padStart(8, "0");
  const response = H(`${ha1}:${nonce}:${ncHex}:abc:auth:${ha2}`);
  return { ...reg, authorization: `Digest username="1001", realm="${realm}", nonce="${nonce}", uri="sip:${realm}", response="${response}", algorithm=MD5, cnonce="abc", qop=auth, nc=${ncHex}` };
}
const accountId = demo.account.id;
const deviceId = demo.devices["1001"].id;
const route = (to) => ({ callId: `bench-${Math.random()}`, from: `sip:1001@${realm}`, fromDomain: realm, ruri: `sip:${to}@${realm}`, to: `sip:${to}@${realm}`, accountId, deviceId });

// /flow: each client drives its own call through a gather that loops on itself, so every step
// loads the call's Durable Object, steps the interpreter, stores the session and its trace.
const mediaToken = process.env.BENCH_MEDIA_TOKEN;
const flowId = process.env.BENCH_FLOW_ID;
const calls = new Map(); // client id -> {callId, seq}
async function flowReq(body) {
  const r = await fetch(base + "/flow", { method: "POST", headers: { authorization: `Bearer ${mediaToken}`, "content-type": "application/json" }, body: JSON.stringify(body) });
  const j = await r.json();
  if (r.status !== 200) throw new Error(JSON.stringify(j));
  return j;
}
let nextCall = 0;
async function flowStep(client) {
  let c = calls.get(client);
  if (!c || c.seq > 200) {
    const callId = `bench-flow-${process.pid}-${nextCall++}`;
    const first = await flowReq({ callId, accountId, flowId });
    c = { callId, seq: first.seq };
    calls.set(client, c);
    return;
  }
  const next = await flowReq({ callId: c.callId, seq: c.seq, outcome: "digit:1" });
  if (next.command !== "gather") throw new Error(JSON.stringify(next));
  c.seq = next.seq;
}

const endpoints = [
  { name: "GET /health", run: () => fetch(base + "/health").then((r) => { if (r.status !== 200) throw new Error(r.status); return r.text(); }) },
  { name: "POST /auth (challenge)", run: () => post("/auth", reg).then(check("challenge", "result")) },
  { name: "POST /auth (digest ok)", run: () => post("/auth", authBody()).then(check("ok", "result")) },
  { name: "POST /route (extension)", run: () => post("/route", route("1002")).then(checkRt("proxy")) },
  { name: "POST /route?explain=1 (PSTN)", run: () => post("/route?explain=1", route("5557654321")).then(checkRt("outbound")) },
  ...(mediaToken && flowId ? [{ name: "POST /flow (step)", run: (client) => flowStep(client) }] : []),
];
function check(v, k) { return (j) => { if (j[k] !== v) throw new Error(JSON.stringify(j)); }; }
function checkRt(a) { return (j) => { if (j.rtjson?.action !== a) throw new Error(JSON.stringify(j)); }; }

async function measure(ep) {
  const lat = [];
  let errors = 0, sent = 0, firstError;
  const t0 = performance.now();
  const deadline = t0 + DURATION_MS;
  async function client(_, id) {
    while (performance.now() < deadline && sent < MAX_REQUESTS) {
      sent++;
      const s = performance.now();
      try { await ep.run(id); lat.push(performance.now() - s); } catch (e) { errors++; firstError ??= String(e).slice(0, 200); }
    }
  }
  await Promise.all(Array.from({ length: CONCURRENCY }, (_, id) => client(_, id)));
  const elapsed = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const q = (p) => lat.length ? lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] : NaN;
  return { name: ep.name, ok: lat.length, errors, rps: lat.length / elapsed, p50: q(0.5), p99: q(0.99), firstError };
}

// Warm up every path once (isolate, caches, Durable Objects).
for (const ep of endpoints) await ep.run(CONCURRENCY);
const results = [];
for (const ep of endpoints) results.push(await measure(ep));
const base_rps = results[0].rps;
console.log(`concurrency ${CONCURRENCY}, ${secs} s per endpoint, one wrangler dev (workerd) on this machine`);
console.log("endpoint".padEnd(32) + "req/s".padStart(9) + "p50 ms".padStart(9) + "p99 ms".padStart(9) + "  ratio to /health" + "  errors");
for (const r of results) {
  console.log(r.name.padEnd(32) + r.rps.toFixed(0).padStart(9) + r.p50.toFixed(2).padStart(9) + r.p99.toFixed(2).padStart(9) + ("  " + (r.rps / base_rps).toFixed(2)).padEnd(19) + "  " + r.errors + (r.firstError ? ` (${r.firstError})` : ""));
}
if (results.some((r) => r.errors > 0 || r.ok === 0)) process.exit(1);
