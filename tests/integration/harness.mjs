// Test harness: runs the built Worker under `wrangler dev` (workerd) with its own local
// D1 / Durable Object state, provisions with the real provisioning CLI, and speaks HTTP to it.
// No mocks: everything goes through the same binaries an operator uses.
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, rmSync, existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../..");
const ADMIN = process.env.CALLPLANE_ADMIN || join(ROOT, "target/debug/callplane-admin");

function run(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, encoding: "utf8", timeout: opts.timeout ?? 120_000, env: process.env });
  if (r.status !== 0) {
    throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr || r.stdout}`);
  }
  return r.stdout;
}

/** Start a Worker on `port`; returns a handle with base URL, admin(), d1(), stop(). */
export function startWorker(name, port, vars = []) {
  const state = join(ROOT, "tests/.run", name);
  rmSync(state, { recursive: true, force: true });
  mkdirSync(state, { recursive: true });
  const args = ["--port", String(port), "--state", state];
  for (const v of vars) args.push("--var", v);
  run(join(ROOT, "scripts/worker-up.sh"), args, { timeout: 180_000 });
  const w = {
    base: `http://127.0.0.1:${port}`,
    state,
    /** Run a provisioning command; returns its JSON output. */
    admin(...a) {
      if (!existsSync(ADMIN)) throw new Error(`provisioning CLI not built: ${ADMIN}`);
      return JSON.parse(run(ADMIN, ["--local", "--persist-to", state, ...a]));
    },
    /** Run SQL against the local D1 and return the rows. */
    d1(sql) {
      const out = run(join(ROOT, "node_modules/.bin/wrangler"), ["d1", "execute", "callplane", "--local", "--persist-to", state, "--json", "--command", sql]);
      return JSON.parse(out)[0].results;
    },
    stop() {
      spawnSync(join(ROOT, "scripts/worker-down.sh"), [state], { timeout: 30_000 });
    },
  };
  return w;
}

/** A fresh credential token of the documented form `<cred id>.<secret>`. */
export function newToken() {
  // TypeID: "cred_" + 26 base32 chars of a UUIDv7 (first char 0-7).
  const alphabet = "0123456789abcdefghjkmnpqrstvwxyz";
  const bytes = randomBytes(16);
  const ms = BigInt(Date.now());
  for (let i = 0; i < 6; i++) bytes[i] = Number((ms >> BigInt(8 * (5 - i))) & 0xffn);
  bytes[6] = (bytes[6] & 0x0f) | 0x70;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  let n = BigInt("0x" + bytes.toString("hex"));
  let s = "";
  for (let i = 0; i < 26; i++) { s = alphabet[Number(n & 31n)] + s; n >>= 5n; }
  return `cred_${s}.${randomBytes(20).toString("hex")}`;
}

/**
 * fetch, retried once when a pooled keep-alive connection turns out to have been closed by the
 * server while idle ("other side closed" before any response: the request never reached the
 * Worker). Tests idle for seconds while the CLI provisions, longer than the server keeps sockets.
 */
export async function fetchRetry(url, init) {
  try {
    return await fetch(url, init);
  } catch (e) {
    const stale = /other side closed|ECONNRESET/.test(String(e?.cause?.message ?? e?.cause?.code ?? e));
    if (!stale) throw e;
    return fetch(url, { ...init, signal: AbortSignal.timeout(15_000) });
  }
}

export async function call(w, method, path, { token, body, form, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  let payload;
  if (form) {
    h["content-type"] = "application/x-www-form-urlencoded";
    payload = new URLSearchParams(form).toString();
  } else if (body !== undefined) {
    h["content-type"] = "application/json";
    payload = typeof body === "string" ? body : JSON.stringify(body);
  }
  const r = await fetchRetry(w.base + path, { method, headers: h, body: payload, signal: AbortSignal.timeout(15_000) });
  const text = await r.text();
  let json;
  try { json = JSON.parse(text); } catch { json = undefined; }
  return { status: r.status, text, json, headers: r.headers };
}

// ---- SIP digest, as a user agent computes it ----
const H = (alg, s) => createHash(alg === "SHA-256" ? "sha256" : "md5").update(s).digest("hex");

/** Parse the first challenge line of an /auth answer into its params. */
export function challengeParams(line) {
  const params = {};
  for (const m of line.matchAll(/(\w+)=(?:"([^"]*)"|([^,\s]+))/g)) params[m[1].toLowerCase()] = m[2] ?? m[3];
  return params;
}

/** The Authorization value answering `line` for user/password. */
export function digestAnswer(line, { user, password, method, uri, nc = 1, cnonce = "0a4f113b", algorithm }) {
  const p = challengeParams(line);
  const alg = algorithm || p.algorithm || "MD5";
  const ncHex = nc.toString(16).padStart(8, "0");
  const ha1 = H(alg, `${user}:${p.realm}:${password}`);
  const ha2 = H(alg, `${method}:${uri}`);
  const response = H(alg, `${ha1}:${p.nonce}:${ncHex}:${cnonce}:auth:${ha2}`);
  return `Digest username="${user}", realm="${p.realm}", nonce="${p.nonce}", uri="${uri}", response="${response}", algorithm=${alg}, cnonce="${cnonce}", qop=auth, nc=${ncHex}, opaque="${p.opaque}"`;
}
