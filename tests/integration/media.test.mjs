// /media on local R2 through the real Worker: per-account scoping, signed URLs for media nodes,
// the media-node address allowlist, ETag / If-None-Match, Range, content types, size cap.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startWorker, newToken, call, fetchRetry } from "./harness.mjs";

const PORT = Number(process.env.IT_MEDIA_PORT || 8803);
let w, op, media, agentA, agentB, accA, accB;
const wav = Buffer.concat([Buffer.from("RIFF"), Buffer.alloc(4), Buffer.from("WAVEfmt "), Buffer.alloc(1000, 7)]);

async function raw(method, path, token, { body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.authorization = `Bearer ${token}`;
  const r = await fetchRetry(w.base + path, { method, headers: h, body, signal: AbortSignal.timeout(15_000) });
  return { status: r.status, headers: r.headers, buf: Buffer.from(await r.arrayBuffer()) };
}

let scopedOp;
before(() => {
  // 127.0.0.1 (where this test runs) is allow-listed as a media node address.
  w = startWorker("it-media", PORT, ["MEDIA_NODE_ALLOWLIST:127.0.0.1/32"]);
  [op, media, agentA, agentB] = [newToken(), newToken(), newToken(), newToken()];
  accA = w.admin("account", "create", "--name", "A", "--domain", "a.media.test");
  accB = w.admin("account", "create", "--name", "B", "--domain", "b.media.test");
  w.admin("credential", "create", "--name", "ops", "--role", "operator", "--token", op);
  w.admin("credential", "create", "--name", "fs", "--role", "media-node", "--token", media);
  w.admin("credential", "create", "--name", "a", "--role", "agent-app", "--account", accA.id, "--token", agentA);
  w.admin("credential", "create", "--name", "b", "--role", "agent-app", "--account", accB.id, "--token", agentB);
  scopedOp = newToken();
  w.admin("credential", "create", "--name", "ops-a", "--role", "operator", "--account", accA.id, "--token", scopedOp);
});
after(() => w?.stop());

const sign = async (key, method = "GET", ttl = 300) => (await call(w, "POST", "/admin/media/sign", { token: op, body: { key, method, ttl_seconds: ttl } })).json.url;

test("a media node uploads with a signed PUT URL and reads back with a signed GET URL", async () => {
  const key = `${accA.id}/voicemail/call-1.wav`;
  const put = await raw("PUT", await sign(key, "PUT"), media, { body: wav, headers: { "content-type": "audio/wav", "x-call-id": "call-1", "x-duration-seconds": "12" } });
  assert.equal(put.status, 201, put.buf.toString());
  const meta = JSON.parse(put.buf);
  assert.equal(meta.size, wav.length);
  assert.equal(meta.callId, "call-1");
  const get = await raw("GET", await sign(key), media);
  assert.equal(get.status, 200);
  assert.deepEqual(get.buf, wav);
  assert.equal(get.headers.get("content-type"), "audio/wav");
  assert.equal(get.headers.get("etag"), meta.etag);
});

test("media nodes need a signature matching method and key, unexpired", async () => {
  const key = `${accA.id}/prompts/x.wav`;
  await raw("PUT", `/media/${key}`, op, { body: wav, headers: { "content-type": "audio/wav" } });
  assert.equal((await raw("GET", `/media/${key}`, media)).status, 403, "no signature");
  const putUrl = await sign(key, "PUT");
  assert.equal((await raw("GET", putUrl, media)).status, 403, "a PUT signature does not allow GET");
  const other = await sign(`${accB.id}/prompts/x.wav`);
  assert.equal((await raw("GET", other.replace(accB.id, accA.id), media)).status, 403, "a signature for B's key does not open A's");
  const good = await sign(key);
  const tampered = good.replace(/sig=(.)/, (_, c) => `sig=${c === "0" ? "1" : "0"}`);
  assert.notEqual(tampered, good);
  assert.equal((await raw("GET", tampered, media)).status, 403);
  assert.equal((await raw("GET", good, media)).status, 200);
});

test("account-scoped credentials read only their own account (and system prompts)", async () => {
  const key = `${accA.id}/greetings/hello.wav`;
  await raw("PUT", `/media/${key}`, op, { body: wav, headers: { "content-type": "audio/wav" } });
  await raw("PUT", `/media/system/prompts/en/beep.wav`, op, { body: wav, headers: { "content-type": "audio/wav" } });
  assert.equal((await raw("GET", `/media/${key}`, agentA)).status, 200);
  assert.equal((await raw("GET", `/media/${key}`, agentB)).status, 403);
  assert.equal((await raw("GET", `/media/system/prompts/en/beep.wav`, agentB)).status, 200);
  assert.equal((await raw("PUT", `/media/${key}`, agentA, { body: wav, headers: { "content-type": "audio/wav" } })).status, 403);
  assert.equal((await raw("GET", `/media/${key}`)).status, 401);
});

test("ETag / If-None-Match, Range, HEAD", async () => {
  const key = `${accA.id}/moh/music.wav`;
  await raw("PUT", `/media/${key}`, op, { body: wav, headers: { "content-type": "audio/wav" } });
  const first = await raw("GET", `/media/${key}`, op);
  const etag = first.headers.get("etag");
  assert.ok(etag);
  assert.equal((await raw("GET", `/media/${key}`, op, { headers: { "if-none-match": etag } })).status, 304);
  const part = await raw("GET", `/media/${key}`, op, { headers: { range: "bytes=4-11" } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get("content-range"), `bytes 4-11/${wav.length}`);
  assert.deepEqual(part.buf, wav.subarray(4, 12));
  const tail = await raw("GET", `/media/${key}`, op, { headers: { range: "bytes=-4" } });
  assert.deepEqual(tail.buf, wav.subarray(wav.length - 4));
  const bad = await raw("GET", `/media/${key}`, op, { headers: { range: `bytes=${wav.length}-` } });
  assert.equal(bad.status, 416);
  assert.equal(bad.headers.get("content-range"), `bytes */${wav.length}`);
  const head = await raw("HEAD", `/media/${key}`, op);
  assert.equal(head.status, 200);
  assert.equal(head.headers.get("content-length"), String(wav.length));
  assert.equal(head.buf.length, 0);
});

test("bad keys, content types, sizes and unknown media are 4xx", async () => {
  assert.equal((await raw("GET", `/media/${accA.id}/nothing-here.wav`, op)).status, 404);
  assert.equal((await raw("GET", `/media/not-an-account/x.wav`, op)).status, 400);
  assert.equal((await raw("GET", `/media/${accA.id}/..%2F..%2Fx`, op)).status, 400);
  assert.equal((await raw("PUT", `/media/${accA.id}/x.html`, op, { body: "<b>", headers: { "content-type": "text/html" } })).status, 415);
  assert.equal((await raw("PUT", `/media/${accA.id}/empty.wav`, op, { body: Buffer.alloc(0), headers: { "content-type": "audio/wav" } })).status, 400);
  const big = await raw("PUT", `/media/${accA.id}/big.wav`, op, { body: Buffer.alloc(33 * 1024 * 1024), headers: { "content-type": "audio/wav" } });
  assert.equal(big.status, 413);
  assert.equal((await raw("DELETE", `/media/${accA.id}/x.wav`, op)).status, 405);
});

test("a media node outside the allowlist is refused even with a valid signature", async () => {
  const key = `${accA.id}/prompts/allow.wav`;
  await raw("PUT", `/media/${key}`, op, { body: wav, headers: { "content-type": "audio/wav" } });
  const url = await sign(key);
  // wrangler dev forwards the client's CF-Connecting-IP (Cloudflare's edge sets it in production).
  assert.equal((await raw("GET", url, media, { headers: { "cf-connecting-ip": "203.0.113.9" } })).status, 403);
  assert.equal((await raw("GET", url, media, { headers: { "cf-connecting-ip": "127.0.0.1" } })).status, 200);
});

test("an operator scoped to one account cannot touch another account's media", async () => {
  const key = `${accB.id}/greetings/b.wav`;
  await raw("PUT", `/media/${key}`, op, { body: wav, headers: { "content-type": "audio/wav" } });
  assert.equal((await raw("GET", `/media/${key}`, scopedOp)).status, 403);
  assert.equal((await raw("PUT", `/media/${key}`, scopedOp, { body: wav, headers: { "content-type": "audio/wav" } })).status, 403);
  assert.equal((await call(w, "POST", "/admin/media/sign", { token: scopedOp, body: { key } })).status, 403);
  const own = await call(w, "POST", "/admin/media/sign", { token: scopedOp, body: { key: `${accA.id}/x.wav`, ttlSeconds: 60 } });
  assert.equal(own.status, 200);
  assert.ok(own.json.expires - Math.floor(Date.now() / 1000) <= 61, "ttlSeconds is honoured");
});
