//! The whole flow (issue 5 §6): the REAL Worker under `wrangler dev` (local D1, Durable
//! Objects, R2; `scripts/worker-up.sh --port 8825 --state DIR --var
//! MEDIA_NODE_ALLOWLIST:127.0.0.1/32`, stopped by `scripts/worker-down.sh` even on
//! failure), provisioned with the real `callplane-admin`; the flow runner's real tokio
//! adapter on 127.0.0.1; and a fake FreeSWITCH that connects to it as the outbound socket
//! (`socket 127.0.0.1:<port> async full`) and plays FreeSWITCH's side from the
//! transcripts: 13b (connect reply, JSON events of answer / playback / hangup), 13 (the
//! plain `linger` reply and linger notice, `exit` → `+OK bye` + goodbye), 10 (the
//! `play_and_get_digits` CHANNEL_EXECUTE_COMPLETE with the collected keys).
//!
//! The flow: play (TTS) → gather (a `file` prompt uploaded to R2, fetched by the runner
//! with the media-node credential) → record (TTS prompt + beep) → hangup. The test
//! asserts the runner's ESL commands, that the flow ran to its end, that the recording
//! is in R2 (read back with an operator token), and that the call's trace shows the
//! route, the commands, the outcomes and the recording.
//!
//! Test-only normalization of the recorded messages (the recorded call did not come
//! through callplane, and the runner chooses its own ids):
//! * the connect reply (13b) gets `variable_sip_h_X-Account-Id`, `variable_sip_h_X-Flow-Id`
//!   (the values of the Worker's own `/route` answer) and `variable_sip_call_id`;
//! * each CHANNEL_EXECUTE_COMPLETE's recorded `Application-UUID` is replaced by the
//!   `Event-UUID` the runner sent (FreeSWITCH echoes it: transcript 09);
//! * 10's event: its channel UUID becomes 13b's, and `variable_pagd_result` is renamed
//!   to the variable the runner asked for (`cp_digits_<seq>`; value `123` kept);
//! * the `record` completion is synthesized from 13b's playback completion
//!   (Application `record`, Application-Response `_none_`, `variable_record_ms`), and the
//!   fake writes the WAV file where the runner told `record` to write it (as FreeSWITCH
//!   would); `set` and the prompt playback get their `+OK` reply only.
//!
//! `Content-Length` is fixed wherever a body's length changes. Needs
//! `build/worker/shim.mjs` (`make worker`) and `target/debug/callplane-admin`
//! (`cargo build -p callplane-cli`; `CALLPLANE_ADMIN` overrides): fails without them.

mod support;

use edge_agent::flow::esl_map::{DialConfig, MediaConfig};
use edge_agent::flow::runner::RunnerConfig;
use edge_agent::flow::{self, FlowConfig};
use edge_agent::http::{Endpoint, HttpClient};
use edge_agent::transcript::{Dir, Transcript};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const PORT: u16 = 8825;
const CHAN_13B: &str = "8f6566bf-738c-41e8-96f5-1b299758541d";
const CHAN_10: &str = "729da2d0-64ba-4cdf-b28e-ad079ed86dd7";
const CALL_ID: &str = "flow-it-6f1c2a@198.51.100.7";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn run_bounded(cmd: &mut Command, limit: Duration, what: &str) -> String {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
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

struct Worker {
    state: PathBuf,
    admin: PathBuf,
}

impl Worker {
    fn start() -> Worker {
        let root = root();
        let shim = root.join("build/worker/shim.mjs");
        assert!(shim.is_file(), "{} is missing: build the Worker first (`make worker`); this test runs the real Worker and does not skip", shim.display());
        let admin = std::env::var_os("CALLPLANE_ADMIN").map(PathBuf::from).unwrap_or_else(|| root.join("target/debug/callplane-admin"));
        assert!(admin.is_file(), "{} is missing: build it with `cargo build -p callplane-cli` (or set CALLPLANE_ADMIN)", admin.display());
        assert!(std::net::TcpListener::bind(("127.0.0.1", PORT)).is_ok(), "port {PORT} is busy (the flow test's Worker port)");
        let state = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("flow-worker");
        let _ = std::fs::remove_dir_all(&state);
        std::fs::create_dir_all(&state).unwrap();
        let w = Worker { state, admin };
        run_bounded(
            Command::new(root.join("scripts/worker-up.sh"))
                .args(["--port", &PORT.to_string(), "--state"])
                .arg(&w.state)
                .args(["--var", "MEDIA_NODE_ALLOWLIST:127.0.0.1/32"])
                .current_dir(&root),
            Duration::from_secs(240),
            "scripts/worker-up.sh",
        );
        w
    }

    fn admin(&self, args: &[&str]) -> Value {
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
        HttpClient::new(Endpoint::parse(&format!("http://127.0.0.1:{PORT}")).unwrap(), Some(token), Duration::from_secs(15))
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

async fn json_of(c: &mut HttpClient, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let b = body.map(|v| v.to_string());
    let r = c.request(method, path, b.as_deref()).await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    (r.status, r.json().unwrap_or_else(|| panic!("{method} {path}: not JSON: {}", r.text())))
}

/// S->C messages of the outbound connection of a transcript.
fn outbound(t: &Transcript) -> Vec<Vec<u8>> {
    t.blocks.iter().filter(|b| b.dir == Dir::S2C && b.label.as_deref() == Some("outbound-8084")).map(|b| b.bytes.clone()).collect()
}

fn find<'a>(msgs: &'a [Vec<u8>], needles: &[&str]) -> &'a [u8] {
    msgs.iter().find(|m| {
        let s = String::from_utf8_lossy(m);
        needles.iter().all(|n| s.contains(n))
    })
    .unwrap_or_else(|| panic!("no recorded message with {needles:?}"))
}

/// Edit a JSON event's body text and fix its Content-Length.
fn edit_event(msg: &[u8], edit: impl Fn(String) -> String) -> Vec<u8> {
    let text = String::from_utf8(msg.to_vec()).unwrap();
    let (head, body) = text.split_once("\n\n").unwrap();
    let body = edit(body.to_string());
    let head: Vec<String> = head.split('\n').map(|l| if l.starts_with("Content-Length:") { format!("Content-Length: {}", body.len()) } else { l.to_string() }).collect();
    format!("{}\n\n{body}", head.join("\n")).into_bytes()
}

fn json_field(msg: &[u8], name: &str) -> String {
    let text = String::from_utf8_lossy(msg);
    let body = text.split_once("\n\n").unwrap().1;
    let v: Value = serde_json::from_str(body).unwrap();
    v[name].as_str().unwrap_or_else(|| panic!("no {name} in event")).to_string()
}

fn with_app_uuid(msg: &[u8], ours: &str) -> Vec<u8> {
    let rec = json_field(msg, "Application-UUID");
    edit_event(msg, |b| b.replace(&rec, ours))
}

/// One command the runner sent: header lines and body.
struct Cmd {
    text: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl Cmd {
    fn get(&self, k: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str())
    }
    /// The app argument (header, or body form).
    fn arg(&self) -> String {
        self.get("execute-app-arg").map(str::to_string).unwrap_or_else(|| self.body.clone())
    }
}

struct FakeFs {
    sock: TcpStream,
    pending: Vec<u8>,
    log: Vec<String>,
}

impl FakeFs {
    async fn read_cmd(&mut self) -> Cmd {
        let fut = async {
            loop {
                if let Some(i) = self.pending.windows(2).position(|w| w == b"\n\n") {
                    let head = String::from_utf8(self.pending[..i].to_vec()).unwrap();
                    let headers: Vec<(String, String)> = head.lines().skip(1).filter_map(|l| l.split_once(": ")).map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    let len: usize = headers.iter().find(|(k, _)| k.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.parse().unwrap()).unwrap_or(0);
                    if self.pending.len() >= i + 2 + len {
                        let body = String::from_utf8(self.pending[i + 2..i + 2 + len].to_vec()).unwrap();
                        let text = String::from_utf8(self.pending[..i + 2 + len].to_vec()).unwrap();
                        self.pending.drain(..i + 2 + len);
                        return Cmd { text, headers, body };
                    }
                }
                let mut buf = [0u8; 4096];
                let n = self.sock.read(&mut buf).await.expect("read from the runner");
                assert!(n > 0, "the runner closed the socket; commands so far: {:#?}", self.log);
                self.pending.extend_from_slice(&buf[..n]);
            }
        };
        let c = tokio::time::timeout(Duration::from_secs(30), fut).await.unwrap_or_else(|_| panic!("no command from the runner in time; so far: {:#?}", self.log));
        self.log.push(c.text.clone());
        c
    }

    async fn send(&mut self, bytes: &[u8]) {
        // In a few writes, like TCP segments would split them.
        for part in chunks(bytes, bytes.len() as u64, 900) {
            self.sock.write_all(part).await.unwrap();
        }
    }

    async fn expect_exec(&mut self, app: &str) -> Cmd {
        let c = self.read_cmd().await;
        assert!(c.text.starts_with(&format!("sendmsg {CHAN_13B}\n")), "{:?}", c.text);
        assert_eq!((c.get("call-command"), c.get("execute-app-name"), c.get("event-lock")), (Some("execute"), Some(app), Some("true")), "{:?}", c.text);
        assert!(c.get("Event-UUID").is_some(), "{:?}", c.text);
        c
    }
}

#[test]
fn a_flow_runs_end_to_end_against_the_worker_with_fake_freeswitch() {
    let w = Worker::start();
    let tok = |name: &str, role: &str| w.admin(&["credential", "create", "--name", name, "--role", role])["token"].as_str().expect("token").to_string();
    let (edge_tok, op_tok, media_tok) = (tok("edge", "sip-edge"), tok("ops", "operator"), tok("fs-1", "media-node"));
    let acc = w.admin(&["account", "create", "--name", "Flow IT", "--domain", "flow.sip.test", "--max-calls", "2"])["id"].as_str().unwrap().to_string();
    let flow_file = w.state.join("flow.json");
    std::fs::write(
        &flow_file,
        json!({"version": 1, "start": "welcome", "nodes": {
            "welcome": {"type": "play", "tts": {"text": "Welcome to the flow test"}, "next": "ask"},
            "ask": {"type": "gather", "prompt": {"media": "prompts/ask.wav"}, "maxDigits": 4, "default": "msg", "fallback": "msg"},
            "msg": {"type": "record", "prompt": {"tts": {"text": "Leave a message"}}, "maxSecs": 60, "silenceSecs": 3, "on": {"recorded": "bye"}, "next": "bye"},
            "bye": {"type": "hangup"}
        }})
        .to_string(),
    )
    .unwrap();
    let flow_id = w.admin(&["flow", "create", "--account", &acc, "--name", "it", "--file", flow_file.to_str().unwrap()])["id"].as_str().unwrap().to_string();
    w.admin(&["number", "create", "--account", &acc, "--e164", "+15550002000", "--target", &format!("flow:{flow_id}")]);
    let carrier = w.admin(&["carrier", "create", "--name", "c1", "--address", "198.51.100.0/24", "--port", "5060"]);
    w.admin(&["media-node", "create", "--name", "fs-1", "--host", "127.0.0.1", "--port", "5070"]);
    let cache = w.state.join("media-cache");
    let recdir = w.state.join("recordings");
    std::fs::create_dir_all(&recdir).unwrap();

    let t13 = transcript("13-outbound-socket.txt");
    let t13b = transcript("13b-outbound-socket-myevents-json-linger-2.txt");
    let t10 = transcript("10-play-and-get-digits.txt");
    let (o13, o13b) = (outbound(&t13), outbound(&t13b));
    let prompt_wav: Vec<u8> = (0..4000u32).map(|i| (i % 251) as u8).collect();
    let recording: Vec<u8> = {
        let mut v = b"RIFF\x24\x1f\x00\x00WAVEfmt ".to_vec();
        v.extend((0..8000u32).map(|i| (i * 7 % 256) as u8));
        v
    };

    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        let mut edge = w.client(&edge_tok);
        let mut ops = w.client(&op_tok);
        // Kamailio asks /route: the call goes to the flow on fs-1, with the ids as headers.
        let (st, r) = json_of(
            &mut edge,
            "POST",
            "/route",
            Some(json!({"callId": CALL_ID, "from": "sip:+15559870000@carrier.example", "to": "sip:+15550002000@flow.sip.test", "ruri": "sip:+15550002000@flow.sip.test", "sourceIp": "198.51.100.7", "sourcePort": 5060, "carrierId": carrier["id"]})),
        )
        .await;
        assert_eq!((st, r["rtjson"]["action"].as_str()), (200, Some("flow")), "{r}");
        let extra = r["rtjson"]["routes"][0]["headers"]["extra"].as_str().unwrap().to_string();
        let header = |name: &str| extra.lines().find_map(|l| l.trim().strip_prefix(&format!("{name}: ")).map(str::to_string)).unwrap_or_else(|| panic!("{name} in {extra:?}"));
        let (x_acc, x_flow) = (header("X-Account-Id"), header("X-Flow-Id"));
        assert_eq!((x_acc.as_str(), x_flow.as_str()), (acc.as_str(), flow_id.as_str()));
        // The gather's prompt is in the account's private bucket.
        let up = ops.send("PUT", &format!("/media/{acc}/prompts/ask.wav"), &[], Some(("audio/wav", &prompt_wav)), 1 << 16).await.unwrap();
        assert!((200..300).contains(&up.status), "prompt upload: {} {}", up.status, up.text());

        // The runner, as the daemon runs it.
        let mut runner = RunnerConfig::default();
        runner.media = MediaConfig { tts_engine: "flite".into(), tts_voice: "kal".into() };
        runner.dial = DialConfig::default();
        runner.record_dir = recdir.to_str().unwrap().to_string();
        let fc = FlowConfig { endpoint: Endpoint::parse(&format!("http://127.0.0.1:{PORT}")).unwrap(), token: media_tok.clone(), media_cache: cache.clone(), runner, http_timeout: Duration::from_secs(15) };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let runner_port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(flow::serve(listener, Arc::new(fc)));

        // FreeSWITCH's `socket 127.0.0.1:<port> async full`.
        let sock = TcpStream::connect(("127.0.0.1", runner_port)).await.unwrap();
        let mut fs = FakeFs { sock, pending: Vec::new(), log: Vec::new() };
        assert_eq!(fs.read_cmd().await.text, "connect\n\n");
        let connect = String::from_utf8(find(&o13b, &["CHANNEL_DATA"]).to_vec()).unwrap();
        let inject = format!("variable_sip_h_X-Account-Id: {x_acc}\nvariable_sip_h_X-Flow-Id: {x_flow}\nvariable_sip_call_id: {}\nContent-Type: command/reply", CALL_ID.replace('@', "%40"));
        fs.send(connect.replacen("Content-Type: command/reply", &inject, 1).as_bytes()).await;
        assert_eq!(fs.read_cmd().await.text, "myevents json\n\n");
        fs.send(find(&o13b, &["+OK Events Enabled"])).await;
        assert_eq!(fs.read_cmd().await.text, "linger\n\n");
        fs.send(find(&o13, &["+OK will linger\n"])).await;
        let ok = find(&o13b, &["Reply-Text: +OK\n"]).to_vec();

        // #1 play (TTS): answer first, then the playback.
        let answer = fs.expect_exec("answer").await;
        fs.send(&ok).await;
        fs.send(find(&o13b, &["\"Event-Name\":\"CHANNEL_EXECUTE\"", "\"Application\":\"answer\""])).await;
        fs.send(find(&o13b, &["\"Event-Name\":\"CHANNEL_ANSWER\""])).await;
        fs.send(&with_app_uuid(find(&o13b, &["CHANNEL_EXECUTE_COMPLETE", "\"Application\":\"answer\""]), answer.get("Event-UUID").unwrap())).await;
        let play = fs.expect_exec("playback").await;
        assert_eq!(play.arg(), "say:flite:kal:Welcome to the flow test");
        fs.send(&ok).await;
        fs.send(&with_app_uuid(find(&o13b, &["CHANNEL_EXECUTE_COMPLETE", "\"Application\":\"playback\""]), play.get("Event-UUID").unwrap())).await;

        // #2 gather: the prompt was fetched from R2 into the cache, FreeSWITCH plays the file.
        let pagd = fs.expect_exec("play_and_get_digits").await;
        let cached = cache.join(&acc).join("prompts/ask.wav");
        assert_eq!(pagd.arg(), format!("1 4 1 5000 # {} silence_stream://250 cp_digits_2 [0-9*#]+ 3000", cached.display()));
        assert_eq!(std::fs::read(&cached).unwrap(), prompt_wav, "the cached prompt is the uploaded one");
        fs.send(&ok).await;
        let rec10 = t10.blocks.iter().find(|b| b.dir == Dir::S2C && String::from_utf8_lossy(&b.bytes).contains("\"variable_pagd_result\":\"123\"") && String::from_utf8_lossy(&b.bytes).contains("CHANNEL_EXECUTE_COMPLETE")).expect("10's pagd completion");
        let pagd_done = with_app_uuid(&edit_event(&rec10.bytes, |b| b.replace(CHAN_10, CHAN_13B).replace("\"variable_pagd_result\"", "\"variable_cp_digits_2\"")), pagd.get("Event-UUID").unwrap());
        fs.send(&pagd_done).await;

        // #3 record: finish key, prompt + beep, then record where the runner says.
        let set = fs.expect_exec("set").await;
        assert_eq!(set.arg(), "playback_terminators=#");
        fs.send(&ok).await;
        let prompt = fs.expect_exec("playback").await;
        assert_eq!(prompt.arg(), "file_string://say:flite:kal:Leave a message!tone_stream://%(400,0,800)");
        fs.send(&ok).await;
        let rec = fs.expect_exec("record").await;
        let path = recdir.join(format!("{}-3.wav", CALL_ID.replace('@', "_")));
        assert_eq!(rec.arg(), format!("{} 60 200 3", path.display()));
        fs.send(&ok).await;
        std::fs::write(&path, &recording).unwrap();
        let play_done = find(&o13b, &["CHANNEL_EXECUTE_COMPLETE", "\"Application\":\"playback\""]);
        let rec_done = with_app_uuid(
            &edit_event(play_done, |b| {
                let mut v: Value = serde_json::from_str(&b).unwrap();
                v["Application"] = json!("record");
                v["Application-Data"] = json!(rec.arg());
                v["Application-Response"] = json!("_none_");
                v["variable_record_ms"] = json!("2500");
                v.to_string()
            }),
            rec.get("Event-UUID").unwrap(),
        );
        fs.send(&rec_done).await;

        // #4 hangup: the recorded hangup sequence, the linger notice; then `exit`.
        let hup = fs.read_cmd().await;
        assert_eq!(hup.text, format!("sendmsg {CHAN_13B}\ncall-command: hangup\nhangup-cause: NORMAL_CLEARING\n\n"));
        fs.send(&ok).await;
        let after: Vec<&Vec<u8>> = {
            let i = o13b.iter().position(|m| String::from_utf8_lossy(m).contains("\"Event-Name\":\"CHANNEL_HANGUP\"")).unwrap();
            o13b[i..].iter().filter(|m| String::from_utf8_lossy(m).contains("text/event-json")).collect()
        };
        for m in after {
            fs.send(m).await;
        }
        fs.send(find(&o13, &["Content-Disposition: linger"])).await;
        assert_eq!(fs.read_cmd().await.text, "exit\n\n");
        fs.send(find(&o13, &["+OK bye"])).await;
        fs.send(find(&o13, &["Content-Disposition: disconnect", "goodbye"])).await;
        let _ = fs.sock.shutdown().await;
        let mut rest = Vec::new();
        let n = tokio::time::timeout(Duration::from_secs(5), fs.sock.read_to_end(&mut rest)).await.expect("the runner closes its side").unwrap_or(0);
        assert_eq!(n, 0, "nothing after exit: {:?}", String::from_utf8_lossy(&rest));
        server.abort();

        // The recording is in R2, byte for byte, and the local file is gone.
        let trace = json_of(&mut ops, "GET", &format!("/calls/{}/trace", CALL_ID), None).await.1;
        let entries = trace["entries"].as_array().unwrap_or_else(|| panic!("{trace:#}"));
        let summaries: Vec<String> = entries.iter().map(|e| format!("{} {}", e["kind"].as_str().unwrap_or(""), e["summary"].as_str().unwrap_or(""))).collect();
        let text = summaries.join("\n");
        let recorded = summaries.iter().find_map(|s| s.split("recorded:").nth(1)).map(|k| k.split_whitespace().next().unwrap().to_string()).unwrap_or_else(|| panic!("no recorded: outcome in the trace:\n{text}"));
        let got = ops.send("GET", &format!("/media/{acc}/{recorded}"), &[], None, 1 << 20).await.unwrap();
        assert_eq!(got.status, 200, "{}", got.text());
        assert_eq!(got.body, recording, "the recording in R2 is the file FreeSWITCH wrote");
        assert!(!path.exists(), "the uploaded recording is removed locally");

        // The trace: route, start, each command and outcome, the recording stored, the end.
        assert!(summaries[0].starts_with("route"), "{text}");
        for needle in [
            "flow.start",
            "flow.command #1 welcome: play tts \"Welcome to the flow test\"",
            "flow.outcome #1 welcome: played",
            "flow.command #2 ask: gather 1-4 digits",
            "flow.outcome #2 ask: digits:123",
            "flow.command #3 msg: record recordings/",
            &format!("flow.outcome #3 msg: recorded:{recorded}"),
            "flow.command #4 bye: hangup normal",
            "flow.outcome #4 bye: hangup",
            &format!("recording stored: {acc}/{recorded}"),
            "disposition",
        ] {
            assert!(text.contains(needle), "trace lacks {needle:?}:\n{text}");
        }
        let outcome3 = entries.iter().find(|e| e["summary"].as_str().is_some_and(|s| s.starts_with("#3") && s.contains("recorded:"))).unwrap();
        assert!(outcome3.to_string().contains("2500"), "durationMs in the step data: {outcome3}");
    });
}
