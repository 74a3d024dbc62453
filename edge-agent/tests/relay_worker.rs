//! The relay against the real Worker (built, under `wrangler dev`, local D1 and
//! Durable Objects, provisioned with the real `callplane-admin`) and the fake ESL
//! server replaying transcript 19 (a real SIP call through FreeSWITCH 1.10.12).
//!
//! Needs `build/worker/shim.mjs` (`make worker`) and `target/debug/callplane-admin`
//! (`cargo build -p callplane-cli`; `CALLPLANE_ADMIN` overrides) and fails with a
//! clear message without them. Binds 127.0.0.1 only, on the first free port in
//! 8820-8829; the Worker is stopped by its PID (scripts/worker-down.sh) even when the
//! test fails; every wait is bounded. The relay reaches the Worker through a loopback
//! TCP forwarder the test starts late, so the first reports meet a refused connection
//! and are retried.
//!
//! Test-only normalization of the transcript: the recorded call did not come through
//! callplane, so its channels carry no `X-Account-Id`. The fake server adds
//! `"variable_sip_h_X-Account-Id":"<acc>"` to the JSON events of the inbound leg
//! (70e9b59e, the leg an INVITE from Kamailio would create) and fixes their
//! `Content-Length`; `<acc>` is the value the Worker's own `/route` answer put in the
//! `X-Account-Id` header. Everything else is replayed byte for byte; the one
//! `uuid_getvar` answer the resync needs (`_undef_` for the originated leg's
//! account, not recorded) is built in the recorded `api/response` shape of 10.

mod support;

use edge_agent::client::{ClientConfig, EslClient};
use edge_agent::esl::backoff::BackoffConfig;
use edge_agent::esl::{ConnConfig, EventFormat, Subscription};
use edge_agent::http::{Endpoint, HttpClient};
use edge_agent::relay::{self, RelayConfig, EVENTS};
use edge_agent::transcript::{Dir, Transcript};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;

const CALL_19: &str = "821daf0a-60ca-1240-019a-eecc78ccd840";
const IN_19: &str = "70e9b59e-7d5d-4a0a-8b16-ea38b9d3b0f7";
const OUT_19: &str = "11355a6a-d8f0-4054-b491-79cbcf97deab";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// Run a command to completion, bounded; stdout on success, panic with its output otherwise.
fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> String {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let start = Instant::now();
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            let (o, e) = (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned());
            assert!(out.status.success(), "{what} failed ({}):\n{o}\n{e}", out.status);
            return o;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {limit:?}, killed");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Worker under `wrangler dev`, stopped on drop.
struct Worker {
    state: PathBuf,
    port: u16,
    admin: PathBuf,
}

impl Worker {
    fn start() -> Worker {
        let root = root();
        let shim = root.join("build/worker/shim.mjs");
        assert!(shim.is_file(), "{} is missing: build the Worker first (`make worker`); this test runs the real Worker and does not skip", shim.display());
        let admin = std::env::var_os("CALLPLANE_ADMIN").map(PathBuf::from).unwrap_or_else(|| root.join("target/debug/callplane-admin"));
        assert!(admin.is_file(), "{} is missing: build it with `cargo build -p callplane-cli` (or set CALLPLANE_ADMIN)", admin.display());
        let port = (8820..=8829)
            .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
            .expect("no free port in 8820-8829 (the edge-agent's Worker ports)");
        let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("relay-worker-{port}"));
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let w = Worker { state, port, admin };
        run_bounded(
            Command::new(root.join("scripts/worker-up.sh")).args(["--port", &port.to_string(), "--state"]).arg(&w.state).current_dir(&root),
            Duration::from_secs(240),
            "scripts/worker-up.sh",
        );
        w
    }

    fn admin(&self, args: &[&str]) -> Value {
        // Through scripts/env.sh, as `make test` runs it: the CLI drives wrangler,
        // which needs the project's Node 22 first on PATH.
        let out = run_bounded(
            Command::new("bash")
                .args(["-c", "source scripts/env.sh && exec \"$@\"", "admin"])
                .arg(&self.admin)
                .args(["--local", "--persist-to"])
                .arg(&self.state)
                .args(args)
                .current_dir(root()),
            Duration::from_secs(60),
            &format!("callplane-admin {}", args.join(" ")),
        );
        serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("callplane-admin {args:?} printed non-JSON ({e}): {out}"))
    }

    fn client(&self, token: &str) -> HttpClient {
        HttpClient::new(Endpoint::parse(&format!("http://127.0.0.1:{}", self.port)).unwrap(), Some(token), Duration::from_secs(15))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let mut c = Command::new(root().join("scripts/worker-down.sh"));
        c.arg(&self.state).stdout(Stdio::null()).stderr(Stdio::null());
        if let Ok(mut child) = c.spawn() {
            let start = Instant::now();
            while start.elapsed() < Duration::from_secs(30) {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
        }
    }
}

/// Add the account header to a recorded JSON event of `uuid` (fixing Content-Length).
fn with_account(msg: &[u8], uuid: &str, account: &str) -> Vec<u8> {
    let text = String::from_utf8(msg.to_vec()).expect("UTF-8 event");
    let (head, body) = text.split_once("\n\n").expect("header block");
    if !head.contains("text/event-json") || !body.contains(&format!("\"Unique-ID\":\"{uuid}\"")) {
        return msg.to_vec();
    }
    let body = body.replacen('{', &format!("{{\"variable_sip_h_X-Account-Id\":\"{account}\","), 1);
    let head: Vec<String> = head.split('\n').map(|l| if l.starts_with("Content-Length:") { format!("Content-Length: {}", body.len()) } else { l.to_string() }).collect();
    format!("{}\n\n{body}", head.join("\n")).into_bytes()
}

fn event_name(msg: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(msg);
    let (head, body) = text.split_once("\n\n")?;
    if !head.contains("text/event-json") {
        return None;
    }
    let v: Value = serde_json::from_str(body).ok()?;
    Some(format!("{} {}", v["Event-Name"].as_str()?, v["Unique-ID"].as_str().unwrap_or("")))
}

/// 19's channel events (not the capture client's BACKGROUND_JOB), split where 19
/// ran `show channels as json` (after the originated leg's CHANNEL_PARK).
fn events_19(t: &Transcript, account: &str) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let evs: Vec<Vec<u8>> = t
        .blocks
        .iter()
        .filter(|b| b.dir == Dir::S2C)
        .filter(|b| event_name(&b.bytes).is_some_and(|n| !n.starts_with("BACKGROUND_JOB")))
        .map(|b| with_account(&b.bytes, IN_19, account))
        .collect();
    let cut = evs.iter().position(|m| event_name(m).as_deref() == Some(&format!("CHANNEL_PARK {OUT_19}"))).expect("CHANNEL_PARK of the originated leg") + 1;
    (evs[..cut].to_vec(), evs[cut..].to_vec())
}

fn api_response_like_10(body: &str) -> Vec<u8> {
    let rec = s2c_containing(&transcript("10-play-and-get-digits.txt"), "Content-Length: 3\n\n123");
    let rec = String::from_utf8(rec).unwrap();
    assert_eq!(rec, "Content-Type: api/response\nContent-Length: 3\n\n123", "recorded uuid_getvar answer shape");
    format!("Content-Type: api/response\nContent-Length: {}\n\n{body}", body.len()).into_bytes()
}

async fn json_of(c: &mut HttpClient, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let b = body.map(|v| v.to_string());
    let r = c.request(method, path, b.as_deref()).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (r.status, r.json().unwrap_or_else(|| panic!("{method} {path}: not JSON: {}", r.text())))
}

/// Poll `f` (bounded) until `ok`; returns the last value.
async fn until<F, Fut>(what: &str, mut f: F, ok: impl Fn(&Value) -> bool) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Value>,
{
    let start = Instant::now();
    loop {
        let v = f().await;
        if ok(&v) {
            return v;
        }
        if start.elapsed() > Duration::from_secs(20) {
            panic!("timed out waiting for {what}; last: {v:#}");
        }
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[test]
fn relay_turns_the_recorded_call_into_dialog_events_and_reconciles_after_a_reconnect() {
    let w = Worker::start();
    let tok = |name: &str, role: &str| w.admin(&["credential", "create", "--name", name, "--role", role])["token"].as_str().expect("token").to_string();
    let (edge_tok, op_tok, media_tok) = (tok("edge", "sip-edge"), tok("ops", "operator"), tok("fs-1", "media-node"));
    let acc = w.admin(&["account", "create", "--name", "Relay IT", "--domain", "relay.sip.test", "--max-calls", "3"]);
    let acc = acc["id"].as_str().unwrap().to_string();
    let flow_file = w.state.join("flow.json");
    std::fs::write(&flow_file, r#"{"version":1,"start":"bye","nodes":{"bye":{"type":"hangup"}}}"#).unwrap();
    let flow = w.admin(&["flow", "create", "--account", &acc, "--name", "main", "--file", flow_file.to_str().unwrap()]);
    w.admin(&["number", "create", "--account", &acc, "--e164", "+15550001000", "--target", &format!("flow:{}", flow["id"].as_str().unwrap())]);
    let carrier = w.admin(&["carrier", "create", "--name", "c1", "--address", "198.51.100.0/24", "--port", "5060"]);
    w.admin(&["media-node", "create", "--name", "fs-1", "--host", "127.0.0.1", "--port", "5070"]);
    let ban_file = w.state.join("bans");
    std::fs::write(&ban_file, "# test bans\n203.0.113.7 4102444800\n198.51.100.0/24\n").unwrap();

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut edge = w.client(&edge_tok);
        let mut ops = w.client(&op_tok);
        let route = |call_id: &str| {
            json!({"callId": call_id, "from": "sip:+15559870000@carrier.example", "to": "sip:+15550001000@relay.sip.test", "ruri": "sip:+15550001000@relay.sip.test", "sourceIp": "198.51.100.7", "sourcePort": 5060, "carrierId": carrier["id"]})
        };
        // The recorded call's Call-ID is routed to the flow: a lease is taken.
        let (st, r) = json_of(&mut edge, "POST", "/route", Some(route(CALL_19))).await;
        assert_eq!(st, 200, "{r}");
        assert_eq!(r["rtjson"]["action"], "flow", "{r}");
        let extra = r["rtjson"]["routes"][0]["headers"]["extra"].as_str().unwrap().to_string();
        let routed_account = extra.lines().find_map(|l| l.trim().strip_prefix("X-Account-Id: ")).expect("X-Account-Id in the route").to_string();
        assert_eq!(routed_account, acc);
        // A second call that this node answered earlier (a previous agent confirmed it,
        // pinning its lease to fs-1) and whose `terminated` was lost: its lease leaked.
        let (st, _) = json_of(&mut edge, "POST", "/route", Some(route("leaked-call-1"))).await;
        assert_eq!(st, 200);
        let mut media = w.client(&media_tok);
        let (st, r) = json_of(&mut media, "POST", "/presence/event", Some(json!({"type": "dialog", "callId": "leaked-call-1", "accountId": acc, "state": "confirmed", "node": "fs-1"}))).await;
        assert_eq!(st, 200, "{r}");
        // A third call that never touches this node (a trunk call, or one on another
        // media node): not fs-1's to judge, whatever fs-1 reports live.
        let (st, _) = json_of(&mut edge, "POST", "/route", Some(route("elsewhere-call-1"))).await;
        assert_eq!(st, 200);
        let (_, cac) = json_of(&mut ops, "GET", &format!("/cac?accountId={acc}"), None).await;
        assert_eq!(cac["active"], 3, "{cac}");
        // callplane refuses a media node's reconcile that does not name its node.
        let (st, r) = json_of(&mut media, "POST", "/cac/reconcile", Some(json!({"accountId": acc, "liveCallIds": []}))).await;
        assert_eq!(st, 400, "{r}");

        // Fake FreeSWITCH: connection 1 delivers the call up to both answers and
        // drops; connection 2 answers the resync snapshot, waits at a gate, then
        // delivers the hold/unhold and the hangups.
        let t19 = transcript("19-sofia-sip-call-hold-unhold.txt");
        let t3 = transcript("03-api-commands.txt");
        let (before, after) = events_19(&t19, &routed_account);
        assert!(before.iter().any(|m| event_name(m).as_deref() == Some(&format!("CHANNEL_ANSWER {IN_19}"))));
        assert!(after.iter().any(|m| event_name(m).as_deref() == Some(&format!("CHANNEL_HANGUP_COMPLETE {IN_19}"))));
        let sub_line = format!("event json {}\n\n", EVENTS.join(" "));
        let handshake = || {
            Script::default()
                .send(s2c_containing(&t19, "auth/request"))
                .expect("auth ClueCon\n\n")
                .send(s2c_containing(&t19, "+OK accepted"))
                .expect(&sub_line)
                .send(s2c_containing(&t19, "+OK event listener enabled json"))
                .expect("api show channels as json\n\n")
        };
        let mut conn1 = handshake().send(s2c_containing(&t3, "{\"row_count\": 0}"));
        for m in &before {
            conn1 = conn1.send(m);
        }
        let conn1 = conn1.then(Step::Close);
        let gate = Arc::new(tokio::sync::Notify::new());
        let mut conn2 = handshake()
            .send(s2c_containing(&t19, "\"row_count\":2"))
            .expect(format!("api uuid_getvar {OUT_19} sip_h_X-Account-Id\n\n"))
            .send(api_response_like_10("_undef_"))
            .then(Step::Gate(gate.clone()));
        for m in &after {
            conn2 = conn2.send(m);
        }
        let conn2 = conn2.then(Step::Hold);
        let fake = FakeEsl::start(vec![conn1, conn2], Chunking { seed: 19, max: 700 }).await;

        let esl = EslClient::start(
            ClientConfig {
                host: "127.0.0.1".into(),
                port: fake.port(),
                conn: ConnConfig::new("ClueCon", Some(Subscription::new(EventFormat::Json, EVENTS).unwrap())),
                connect_timeout: Duration::from_secs(2),
                backoff: BackoffConfig { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
            },
            Box::new(|| 0.5),
        );
        // The relay reaches the Worker through a loopback TCP forwarder that is not
        // listening yet: callplane is unreachable (connection refused) at first.
        let proxy_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cfg = RelayConfig::new(Endpoint::parse(&format!("http://127.0.0.1:{proxy_port}")).unwrap(), &media_tok, "fs-1");
        cfg.reconcile_every = Some(Duration::from_millis(300));
        cfg.reconcile_grace_secs = Some(0);
        cfg.ban_file = Some(ban_file.clone());
        cfg.ban_every = Duration::from_millis(300);
        cfg.workers = 2;
        cfg.retry_initial = Duration::from_millis(100);
        cfg.retry_max = Duration::from_millis(500);
        let relay = relay::start(cfg, esl.clone(), || Box::new(|| 0.5));

        // While callplane is unreachable, reports wait in the queue and are retried;
        // the event socket keeps being read (the call is in the table).
        let stats = until(
            "retries while callplane is unreachable",
            || {
                let r = relay.clone();
                async move { serde_json::to_value(r.stats()).unwrap() }
            },
            |v| v["queue"]["retries"].as_u64() >= Some(3) && v["queue"]["queued"].as_u64() >= Some(1),
        )
        .await;
        assert_eq!(stats["queue"]["delivered"], 0, "{stats:#}");
        let (_, cac) = json_of(&mut ops, "GET", &format!("/cac?accountId={acc}"), None).await;
        assert_eq!(cac["active"], 3, "nothing reached callplane yet: {cac:#}");
        assert_eq!(cac["counters"]["reconciled"], 0, "{cac:#}");
        let call = |v: &Value, id: &str| v["calls"].as_array().and_then(|c| c.iter().find(|c| c["callId"] == id).cloned()).unwrap_or(Value::Null);
        assert_eq!(call(&cac, CALL_19)["confirmed"], false, "{cac:#}");
        // callplane comes back.
        let proxy = tokio::net::TcpListener::bind(("127.0.0.1", proxy_port)).await.expect("re-bind the forwarder port");
        let worker_port = w.port;
        let forwarder = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = proxy.accept().await else { return };
                tokio::spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", worker_port)).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        });

        // At the gate: the call is live again after the reconnect, confirmed and pinned
        // to fs-1; the leaked lease pinned to fs-1 was released by a reconcile listing
        // only the live Call-ID; the call elsewhere was left alone.
        let cac_path = format!("/cac?accountId={acc}");
        let cac = until(
            "the live call confirmed and the leaked lease reconciled",
            || {
                let (p, r) = (cac_path.clone(), relay.clone());
                let mut c = w.client(&op_tok);
                async move {
                    let mut v = json_of(&mut c, "GET", &p, None).await.1;
                    v["relay"] = serde_json::to_value(r.stats()).unwrap();
                    v
                }
            },
            |v| {
                v["active"] == 2
                    && call(v, CALL_19)["confirmed"] == true
                    && call(v, CALL_19)["node"] == "fs-1"
                    && call(v, "leaked-call-1").is_null()
                    && v["counters"]["reconciled"] == 1
                    && v["relay"]["resyncs"] == 2
                    && v["relay"]["synced"] == true
            },
        )
        .await;
        assert_eq!(cac["counters"]["released"], 0, "{cac:#}");
        let elsewhere = call(&cac, "elsewhere-call-1");
        assert_eq!((elsewhere["confirmed"].as_bool(), elsewhere.get("node")), (Some(false), None), "{cac:#}");
        assert_eq!(fake.accepted(), 2, "one reconnect");
        fake.assert_clean();

        gate.notify_one();
        until(
            "the hangup to release the lease",
            || {
                let p = cac_path.clone();
                let mut c = w.client(&op_tok);
                async move { json_of(&mut c, "GET", &p, None).await.1 }
            },
            |v| v["active"] == 1,
        )
        .await;
        // Released by the terminated event (not by a reconcile); later reconciles of
        // fs-1 (nothing live) still leave the call elsewhere alone.
        tokio::time::sleep(Duration::from_millis(900)).await;
        let (_, cac) = json_of(&mut ops, "GET", &cac_path, None).await;
        assert_eq!(cac["calls"][0]["callId"], "elsewhere-call-1", "{cac:#}");
        assert_eq!((cac["counters"]["released"].as_u64(), cac["counters"]["reconciled"].as_u64()), (Some(1), Some(1)), "{cac:#}");

        // The call's trace: /route, one confirmed, one terminated (ended, 9 s, slot released).
        let trace = until(
            "the call's trace",
            || {
                let mut c = w.client(&op_tok);
                async move { json_of(&mut c, "GET", &format!("/calls/{CALL_19}/trace"), None).await.1 }
            },
            |v| v["entries"].as_array().is_some_and(|e| e.iter().any(|x| x["kind"] == "disposition")),
        )
        .await;
        let kinds: Vec<&str> = trace["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
        assert_eq!(kinds, vec!["route", "dialog", "disposition"], "{trace:#}");
        let disp = &trace["entries"][2];
        let summary = disp["summary"].as_str().unwrap();
        assert!(summary.contains("terminated (ended) after 9 s") && summary.contains("slot released"), "{summary}");
        assert_eq!(disp["detail"]["event"]["from"], "sip:0000000000@127.0.0.1");

        // Ban snapshots went to /security/report, which this Worker does not serve
        // yet: a 404, noted, nothing retried, nothing else disturbed.
        let stats = until(
            "a ban report to meet the missing endpoint",
            || {
                let r = relay.clone();
                async move { serde_json::to_value(r.stats()).unwrap() }
            },
            |v| v["security_report_missing"] == true,
        )
        .await;
        assert_eq!(stats["queue"]["dropped_overflow"], 0, "{stats:#}");
        let (st, nf) = json_of(&mut ops, "POST", "/security/report", Some(json!({"node": "fs-1", "bans": []}))).await;
        assert_eq!((st, nf["status"].as_str()), (404, Some("error")), "the endpoint is really absent: {nf}");

        relay.shutdown(Duration::from_secs(2)).await;
        forwarder.abort();
        esl.shutdown(Duration::from_secs(2)).await;
        fake.assert_clean();
    });
}
