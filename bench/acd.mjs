// ACD offers per second through ONE account's Durable Object (issue 4 §6), next to /health
// measured in the same run. Run by bench/acd.sh against a fresh local Worker:
//   node bench/acd.mjs BASE STATE_DIR [seconds=10] [concurrency=8]
//
// Setup (not timed): one account with 200 users / devices, all members of one longest_idle
// queue (no wrap-up, 600 s offer timeout so nothing times out), provisioned with one bulk SQL
// file through wrangler (the CLI would take minutes for 400 rows); 200 registrations (so the
// agents are reachable), 200 logins, then 1,000 callers enqueued: 200 are offered at once
// (every agent rings) and 800 wait.
//
// Timed: C closed-loop clients, each repeating one cycle: confirm an outstanding offer
// (GET /agent/confirm), end that call (POST /queue/end: the agent is free again, and the same
// request's dispatch offers it the next waiting caller), enqueue a new caller (POST
// /queue/enqueue: the line stays at ~1,000). Every request is a step of the account's Durable
// Object with 200 agents and ~1,000 callers in its state. Reported: offers made per second
// (counted from the offers the responses return), cycles/s, ACD requests/s, p50/p99 per
// request kind, and the ratio of ACD requests/s to /health req/s.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import { join, resolve, dirname } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const [base, state, secs = "10", conc = "8"] = process.argv.slice(2);
if (!base || !state) {
  console.error("usage: node bench/acd.mjs BASE STATE_DIR [seconds] [concurrency]");
  process.exit(2);
}
const DURATION_MS = Number(secs) * 1000;
const CONCURRENCY = Number(conc);
const AGENTS = 200;
const WAITING = 1000;
const MAX_CYCLES = 100_000;

const ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz";
function typeid(prefix) {
  const b = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) b[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  b[6] = (b[6] & 0x0f) | 0x70;
  b[8] = (b[8] & 0x3f) | 0x80;
  let n = BigInt("0x" + b.toString("hex"));
  let s = "";
  for (let i = 0; i < 26; i++) { s = ALPHABET[Number(n & 31n)] + s; n >>= 5n; }
  return `${prefix}_${s}`;
}
const sha256 = (s) => createHash("sha256").update(s).digest("hex");
const q = (s) => `'${String(s).replace(/'/g, "''")}'`;

// ---- provisioning (one SQL file) ----
const acc = typeid("acc");
const que = typeid("que");
const realm = "bench-acd.sip.test";
const token = `${typeid("cred")}.${randomBytes(20).toString("hex")}`;
const users = [];
const sql = [
  `INSERT INTO accounts (id, name, max_concurrent_calls, created_at) VALUES (${q(acc)}, 'ACD bench', 5000, ${Date.now()});`,
  `INSERT INTO sip_domains (domain, account_id, created_at) VALUES (${q(realm)}, ${q(acc)}, ${Date.now()});`,
  `INSERT INTO credentials (id, name, role, token_hash, created_at) VALUES (${q(token.split(".")[0])}, 'bench-operator', 'operator', ${q(sha256(token))}, ${Date.now()});`,
  `INSERT INTO queues (id, account_id, name, strategy, offer_timeout_secs, wrapup_secs, no_answer_penalty_secs, max_no_answer, max_wait_secs, created_at) VALUES (${q(que)}, ${q(acc)}, 'bench', 'longest_idle', 600, 0, 0, 0, NULL, ${Date.now()});`,
];
for (let i = 0; i < AGENTS; i++) {
  const ext = String(5000 + i);
  const usr = typeid("usr");
  const dev = typeid("dev");
  users.push({ ext, usr, dev });
  sql.push(`INSERT INTO users (id, account_id, extension, name, created_at) VALUES (${q(usr)}, ${q(acc)}, ${q(ext)}, ${q(`Agent ${ext}`)}, ${Date.now()});`);
  sql.push(`INSERT INTO devices (id, account_id, user_id, username, realm, ha1_md5, ha1_sha256, created_at) VALUES (${q(dev)}, ${q(acc)}, ${q(usr)}, ${q(ext)}, ${q(realm)}, ${q("0".repeat(32))}, ${q("0".repeat(64))}, ${Date.now()});`);
  sql.push(`INSERT INTO queue_members (queue_id, user_id, tier, position) VALUES (${q(que)}, ${q(usr)}, 1, ${i});`);
}
const sqlFile = join(state, "bench-acd.sql");
writeFileSync(sqlFile, sql.join("\n") + "\n");
const d1 = spawnSync(join(ROOT, "node_modules/.bin/wrangler"), ["d1", "execute", "callplane", "--local", "--persist-to", state, "--file", sqlFile], { cwd: ROOT, encoding: "utf8", timeout: 180_000 });
if (d1.status !== 0) {
  console.error(d1.stderr || d1.stdout);
  process.exit(1);
}

// ---- HTTP ----
async function req(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body ? { "content-type": "application/json" } : {}) },
    body: body ? JSON.stringify(body) : undefined,
    signal: AbortSignal.timeout(30_000),
  });
  const text = await r.text();
  if (r.status !== 200) throw new Error(`${method} ${path} → ${r.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function pool(n, items, f) {
  let i = 0;
  await Promise.all(Array.from({ length: n }, async () => { while (i < items.length) await f(items[i++]); }));
}

const offers = []; // outstanding offers (confirm hooks), FIFO
let offersMade = 0;
const take = (list) => { for (const o of list ?? []) { offers.push(o); offersMade += 1; } };

const t0 = Date.now();
await pool(8, users, (u) => req("POST", "/presence/event", { type: "register", accountId: acc, deviceId: u.dev, aor: `sip:${u.ext}@${realm}`, contact: `sip:${u.ext}@127.0.0.1:5060`, expires: 3600 }));
await pool(8, users, async (u) => take((await req("POST", "/agent", { accountId: acc, userId: u.usr, event: "login" })).offers));
let callSeq = 0;
const newCall = () => `bench-${++callSeq}@acd`;
const enq = async () => take((await req("POST", "/queue/enqueue", { accountId: acc, callId: newCall(), queue: "bench" })).offers);
await pool(8, Array.from({ length: WAITING }), enq);
const setupMs = Date.now() - t0;
const p = await req("GET", `/presence/users?accountId=${acc}`);
if (p.tiles.ringing !== AGENTS || p.tiles.waiting !== WAITING || offers.length !== AGENTS) {
  throw new Error(`unexpected setup state: ringing ${p.tiles.ringing}, waiting ${p.tiles.waiting}, offers ${offers.length}`);
}

// ---- timed phases ----
function pct(sorted, p) { return sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] : NaN; }
const lat = { confirm: [], end: [], enqueue: [] };
async function timed(kind, f) {
  const s = performance.now();
  const v = await f();
  lat[kind].push(performance.now() - s);
  return v;
}

async function health() {
  let n = 0;
  const end = Date.now() + DURATION_MS;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < end && n < MAX_CYCLES * 3) {
      const r = await fetch(base + "/health");
      await r.text();
      n += 1;
    }
  }));
  return n / (DURATION_MS / 1000);
}

async function acdCycles() {
  let cycles = 0;
  const made0 = offersMade;
  const start = Date.now();
  const end = start + DURATION_MS;
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (Date.now() < end && cycles < MAX_CYCLES) {
      const o = offers.shift();
      if (!o) { await new Promise((r) => setTimeout(r, 1)); continue; }
      const c = await timed("confirm", () => req("GET", o.hooks.confirm));
      if (c.connected.callId !== o.callId) throw new Error(`confirm answered another call: ${JSON.stringify(c)}`);
      take((await timed("end", () => req("POST", "/queue/end", { accountId: acc, callId: o.callId }))).offers);
      await timed("enqueue", enq);
      cycles += 1;
    }
  }));
  const secs = (Date.now() - start) / 1000;
  return { cycles, secs, offers: offersMade - made0 };
}

const healthRps = await health();
const r = await acdCycles();
const after = await req("GET", `/presence/users?accountId=${acc}`);
const acdRps = (r.cycles * 3) / r.secs;
const fmt = (x) => x.toFixed(1);
const line = (k) => { const s = lat[k].slice().sort((a, b) => a - b); return `${k.padEnd(8)} n=${s.length} p50=${fmt(pct(s, 0.5))} ms p99=${fmt(pct(s, 0.99))} ms`; };
console.log(`ACD bench: 1 account, ${AGENTS} agents, ${WAITING} waiting callers, ${CONCURRENCY} clients, ${secs} s per phase (setup ${(setupMs / 1000).toFixed(1)} s)`);
console.log(`/health            ${fmt(healthRps)} req/s`);
console.log(`ACD cycles         ${fmt(r.cycles / r.secs)} cycles/s (confirm + end + enqueue)`);
console.log(`ACD offers         ${fmt(r.offers / r.secs)} offers/s  (${r.offers} offers in ${r.secs.toFixed(1)} s)`);
console.log(`ACD requests       ${fmt(acdRps)} req/s = ${(acdRps / healthRps).toFixed(3)} × /health`);
for (const k of ["confirm", "end", "enqueue"]) console.log(line(k));
console.log(`after: waiting ${after.tiles.waiting}, ringing ${after.tiles.ringing}, on call ${after.tiles.onCall}, answered ${after.queues[0].counters.answered}`);
