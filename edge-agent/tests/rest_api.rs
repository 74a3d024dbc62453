//! REST endpoints against the fake ESL server: the exact ESL command each request
//! produces, and the HTTP mapping of FreeSWITCH's recorded replies.

mod support;

use edge_agent::client::{ClientConfig, EslClient};
use edge_agent::esl::backoff::BackoffConfig;
use edge_agent::esl::{ConnConfig, EventFormat, Subscription, Uuid};
use edge_agent::rest::{router, AppState};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const U: &str = "00000000-1111-2222-3333-444444444444";

struct Env {
    fake: FakeEsl,
    rest: std::net::SocketAddr,
}

impl Env {
    async fn req(&self, method: &str, path: &str, body: &str) -> HttpResponse {
        http(self.rest, method, path, &[], body).await
    }
    /// Commands the fake ESL received after the handshake (auth + subscription).
    fn commands(&self) -> Vec<String> {
        self.fake.received().into_iter().skip(2).collect()
    }
}

fn t(name: &str) -> edge_agent::transcript::Transcript {
    transcript(name)
}

/// Handshake recorded in transcripts 03 and 16, then `tail`.
fn script(tail: Vec<Step>) -> Script {
    let (t3, t16) = (t("03-api-commands.txt"), t("16-originate-errors-and-bgapi-jobuuid.txt"));
    let mut s = Script::default()
        .send(s2c_containing(&t3, "auth/request"))
        .expect("auth ClueCon\n\n")
        .send(s2c_containing(&t3, "+OK accepted"))
        .expect("event json BACKGROUND_JOB\n\n")
        .send(s2c_containing(&t16, "+OK event listener enabled json"));
    s.0.extend(tail);
    s.0.push(Step::Hold);
    s
}

/// Deterministic ids: 00000000-0000-4000-8000-00000000000N.
fn ids() -> edge_agent::rest::IdGen {
    let n = Arc::new(AtomicU64::new(0));
    Arc::new(move || {
        let i = n.fetch_add(1, Ordering::SeqCst) + 1;
        Uuid::parse(&format!("00000000-0000-4000-8000-{i:012}")).unwrap()
    })
}

async fn start_with(tail: Vec<Step>, token: Option<&str>) -> Env {
    let fake = FakeEsl::start(vec![script(tail)], Chunking { seed: 11, max: 9 }).await;
    let esl = EslClient::start(
        ClientConfig {
            host: "127.0.0.1".into(),
            port: fake.port(),
            conn: ConnConfig::new("ClueCon", Some(Subscription::new(EventFormat::Json, &["BACKGROUND_JOB"]).unwrap())),
            connect_timeout: Duration::from_secs(2),
            backoff: BackoffConfig { initial: Duration::from_millis(50), max: Duration::from_millis(200) },
        },
        Box::new(|| 0.5),
    );
    assert!(esl.wait_ready(WAIT).await, "ESL not ready: {:?}", fake.errors());
    let mut state = AppState::new(esl, token.map(str::to_string));
    state.ids = ids();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let rest = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });
    Env { fake, rest }
}

async fn start(tail: Vec<Step>) -> Env {
    start_with(tail, None).await
}

fn exp(cmd: &str) -> Step {
    Step::Expect(cmd.as_bytes().to_vec())
}
fn send(b: Vec<u8>) -> Step {
    Step::Send(b)
}
fn api_reply(body: &str) -> Vec<u8> {
    format!("Content-Type: api/response\nContent-Length: {}\n\n{body}", body.len()).into_bytes()
}

fn assert_error(r: &HttpResponse, status: u16, contains: &str) {
    assert_eq!(r.status, status, "{}", r.body);
    let j = r.json();
    assert_eq!(j["status"], "error");
    assert!(j["message"].as_str().unwrap().contains(contains), "{}", r.body);
}

#[tokio::test]
async fn hangup_maps_no_such_channel_to_404_and_success_to_200() {
    let t3 = t("03-api-commands.txt");
    let t15 = t("15-log-noevents-misc-disconnect.txt");
    let env = start(vec![
        exp(&format!("api uuid_kill {U} NORMAL_CLEARING\n\n")),
        send(s2c_containing(&t3, "-ERR No such channel!")),
        exp(&format!("api uuid_kill {U} USER_BUSY\n\n")),
        send(s2c_containing(&t15, "Content-Length: 4\n\n+OK\n")),
    ])
    .await;
    let r = env.req("POST", &format!("/v1/calls/{U}/hangup"), "").await;
    assert_error(&r, 404, "No such channel");
    let r = env.req("POST", &format!("/v1/calls/{U}/hangup"), r#"{"cause":"USER_BUSY"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"status": "success", "message": format!("Call {U} hung up with cause USER_BUSY")}));
    env.fake.assert_clean();
}

#[tokio::test]
async fn injection_and_bad_input_are_refused_before_reaching_freeswitch() {
    let env = start(vec![]).await;
    for (path, body) in [
        (format!("/v1/calls/{U}/hangup"), r#"{"cause":"NORMAL_CLEARING\n\napi system reboot"}"#.to_string()),
        (format!("/v1/calls/{U}/hangup"), r#"{"cause":"normal clearing"}"#.to_string()),
        ("/v1/calls/not-a-uuid/hangup".to_string(), String::new()),
        (format!("/v1/calls/{U}%0A/park"), String::new()),
        (format!("/v1/calls/{U}/transfer"), r#"{"destination":"9999\nexit"}"#.to_string()),
        (format!("/v1/calls/{U}/transfer"), r#"{"destination":"9999 XML evil"}"#.to_string()),
        (format!("/v1/calls/{U}/transfer"), r#"{}"#.to_string()),
        (format!("/v1/calls/{U}/transfer"), r#"{"destination":"9999","leg":"cleg"}"#.to_string()),
        (format!("/v1/calls/{U}/dtmf"), r#"{"digits":"12\r3"}"#.to_string()),
        (format!("/v1/calls/{U}/dtmf"), r#"{"digits":"12","duration":999999}"#.to_string()),
        (format!("/v1/calls/{U}/record"), r#"{"action":"start","filename":"/tmp/a b.wav"}"#.to_string()),
        (format!("/v1/calls/{U}/record"), r#"{"action":"start"}"#.to_string()),
        (format!("/v1/calls/{U}/hold"), r#"{"action":"pause"}"#.to_string()),
        (format!("/v1/calls/{U}/hold"), "not json".to_string()),
        ("/v1/calls/bridge".to_string(), format!(r#"{{"uuid_a":"{U}","uuid_b":"{U}"}}"#)),
        ("/v1/calls/bridge".to_string(), format!(r#"{{"uuid_a":"{U}","uuid_b":"x"}}"#)),
        ("/v1/calls/originate".to_string(), r#"{"aleg":"user/1000","channel_variables":{"api_on_answer":"system reboot"}}"#.to_string()),
        ("/v1/calls/originate".to_string(), r#"{"aleg":"user/1000\n\nbgapi system reboot"}"#.to_string()),
    ] {
        let r = env.req("POST", &path, &body).await;
        assert_eq!(r.status, 400, "{path} {body}: {}", r.body);
        assert_eq!(r.json()["status"], "error");
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(env.commands().is_empty(), "nothing may reach FreeSWITCH: {:?}", env.commands());
    env.fake.assert_clean();
}

#[tokio::test]
async fn transfer_usage_and_success() {
    let t3 = t("03-api-commands.txt");
    let t15 = t("15-log-noevents-misc-disconnect.txt");
    let env = start(vec![
        exp(&format!("api uuid_transfer {U} 9999 XML default\n\n")),
        send(s2c_containing(&t3, "-ERR No such channel!")),
        exp(&format!("api uuid_transfer {U} -bleg 9999\n\n")),
        send(s2c_containing(&t3, "-USAGE: <uuid> [-bleg|-both]")),
        exp(&format!("api uuid_transfer {U} -both 1000 XML public\n\n")),
        send(s2c_containing(&t15, "Content-Length: 4\n\n+OK\n")),
    ])
    .await;
    let p = format!("/v1/calls/{U}/transfer");
    assert_error(&env.req("POST", &p, r#"{"destination":"9999","context":"default"}"#).await, 404, "No such channel");
    assert_error(&env.req("POST", &p, r#"{"destination":"9999","leg":"bleg"}"#).await, 400, "-USAGE");
    let r = env.req("POST", &p, r#"{"destination":"1000","dialplan":"XML","context":"public","leg":"both"}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["message"], format!("Call {U} (both legs) transferred to 1000 dialplan XML context public"));
    env.fake.assert_clean();
}

#[tokio::test]
async fn answer_park_and_bridge_errors() {
    let t3 = t("03-api-commands.txt");
    let t12 = t("12-uuid-bridge-park-kill.txt");
    let b = "00000000-1111-2222-3333-555555555555";
    let env = start(vec![
        exp(&format!("api uuid_answer {U}\n\n")),
        send(s2c_containing(&t3, "-ERROR")),
        exp(&format!("api uuid_park {U}\n\n")),
        send(s2c_containing(&t12, "-ERR No such channel!")),
        exp(&format!("api uuid_bridge {U} {b}\n\n")),
        send(s2c_containing(&t3, "-ERR Invalid uuid")),
        exp(&format!("api uuid_bridge {U} {b}\n\n")),
        send(api_reply(&format!("+OK {b}\n"))),
    ])
    .await;
    assert_error(&env.req("POST", &format!("/v1/calls/{U}/answer"), "").await, 404, "not found");
    assert_error(&env.req("POST", &format!("/v1/calls/{U}/park"), "").await, 404, "No such channel");
    let body = format!(r#"{{"uuid_a":"{U}","uuid_b":"{b}"}}"#);
    assert_error(&env.req("POST", "/v1/calls/bridge", &body).await, 404, "Invalid uuid");
    let r = env.req("POST", "/v1/calls/bridge", &body).await;
    assert_eq!(r.json(), json!({"status": "success", "message": format!("Calls {U} and {b} bridged")}));
    env.fake.assert_clean();
}

#[tokio::test]
async fn hold_checks_existence_first_because_uuid_hold_says_ok_for_unknown_calls() {
    let t3 = t("03-api-commands.txt");
    let t7 = t("07-uuid-hold.txt");
    let env = start(vec![
        exp(&format!("api uuid_exists {U}\n\n")),
        send(s2c_containing(&t3, "\n\nfalse")),
        exp(&format!("api uuid_exists {U}\n\n")),
        send(api_reply("true")),
        exp(&format!("api uuid_hold {U}\n\n")),
        send(s2c_containing(&t7, "+OK Success")),
        exp(&format!("api uuid_exists {U}\n\n")),
        send(api_reply("true")),
        exp(&format!("api uuid_hold off {U}\n\n")),
        send(s2c_containing(&t7, "-ERR Operation failed")),
    ])
    .await;
    let p = format!("/v1/calls/{U}/hold");
    assert_error(&env.req("POST", &p, r#"{"action":"hold"}"#).await, 404, "not found");
    let r = env.req("POST", &p, r#"{"action":"hold"}"#).await;
    assert_eq!(r.json(), json!({"status": "success", "message": format!("Call {U} hold")}));
    assert_error(&env.req("POST", &p, r#"{"action":"unhold"}"#).await, 502, "Operation failed");
    env.fake.assert_clean();
}

#[tokio::test]
async fn record_and_dtmf() {
    let t6 = t("06-uuid-send-dtmf.txt");
    let t8 = t("08-uuid-record.txt");
    let env = start(vec![
        exp(&format!("api uuid_record {U} start /rec/x.wav\n\n")),
        send(s2c_containing(&t8, "+OK Success")),
        exp(&format!("api uuid_record {U} stop all\n\n")),
        send(s2c_containing(&t8, "-ERR Cannot stop record session!")),
        exp(&format!("api uuid_send_dtmf {U} 123#@150\n\n")),
        send(s2c_containing(&t6, "sent DTMF 123#@150.")),
        exp(&format!("api uuid_send_dtmf {U} 9@100\n\n")),
        send(s2c_containing(&t6, "-ERR Cannot locate session!")),
    ])
    .await;
    let r = env.req("POST", &format!("/v1/calls/{U}/record"), r#"{"action":"start","filename":"/rec/x.wav"}"#).await;
    assert_eq!(r.json()["message"], format!("Recording start for call {U}"));
    assert_error(&env.req("POST", &format!("/v1/calls/{U}/record"), r#"{"action":"stop"}"#).await, 502, "Cannot stop record session");
    let r = env.req("POST", &format!("/v1/calls/{U}/dtmf"), r#"{"digits":"123#","duration":150}"#).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_error(&env.req("POST", &format!("/v1/calls/{U}/dtmf"), r#"{"digits":"9"}"#).await, 404, "Cannot locate session");
    env.fake.assert_clean();
}

/// The recorded BACKGROUND_JOB with its Job-UUID replaced by ours (same length).
fn job_event(t: &edge_agent::transcript::Transcript, needle: &str, recorded_job: &str, job: &str) -> Vec<u8> {
    String::from_utf8(s2c_containing(t, needle)).unwrap().replace(recorded_job, job).into_bytes()
}

#[tokio::test]
async fn originate_uses_bgapi_with_our_job_uuid_and_origination_uuid() {
    let t4 = t("04-originate-event-json-ALL.txt");
    let t16 = t("16-originate-errors-and-bgapi-jobuuid.txt");
    // ids: 1 = origination uuid, 2 = Job-UUID (first request); 3, 4 (second)
    let (call1, job1) = ("00000000-0000-4000-8000-000000000001", "00000000-0000-4000-8000-000000000002");
    let (call2, job2) = ("00000000-0000-4000-8000-000000000003", "00000000-0000-4000-8000-000000000004");
    let rej_job = "78e17df8-9f0e-40c1-99d6-4e6b786e440a";
    let reply = |job: &str| format!("Content-Type: command/reply\nReply-Text: +OK Job-UUID: {job}\nJob-UUID: {job}\n\n");
    // 04's originate job: body "+OK <uuid>\n"
    let t4_bg = String::from_utf8(s2c_containing(&t4, "\"Job-Command\":\"originate\"")).unwrap();
    let t4_job = t4_bg.split("\"Job-UUID\":\"").nth(1).unwrap()[..36].to_string();
    let t4_call = t4_bg.split("\"_body\":\"+OK ").nth(1).unwrap()[..36].to_string();
    let env = start(vec![
        exp(&format!("bgapi originate {{origination_uuid={call1}}}error/CALL_REJECTED &park() undef undef undef undef 60\nJob-UUID: {job1}\n\n")),
        send(reply(job1).into_bytes()),
        send(job_event(&t16, "-ERR CALL_REJECTED", rej_job, job1)),
        exp(&format!("bgapi originate {{origination_uuid={call2},origination_caller_id_number=1000,origination_caller_id_name='Front Desk'}}loopback/7000/default 7000 XML default undef undef 20\nJob-UUID: {job2}\n\n")),
        send(reply(job2).into_bytes()),
        send(job_event(&t4, "\"Job-Command\":\"originate\"", &t4_job, job2)),
    ])
    .await;
    let r = env.req("POST", "/v1/calls/originate", r#"{"aleg":"error/CALL_REJECTED"}"#).await;
    assert_error(&r, 409, "Call not placed: CALL_REJECTED");
    let r = env
        .req(
            "POST",
            "/v1/calls/originate",
            r#"{"aleg":"loopback/7000/default","bleg":"7000","dialplan":"XML","context":"default","caller_id_name":"Front Desk","caller_id_number":"1000","timeout_sec":20}"#,
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json(), json!({"status": "success", "data": {"response": t4_call, "job_uuid": job2}}));
    env.fake.assert_clean();
}

#[tokio::test]
async fn status_health_request_ids_and_unknown_paths() {
    let t3 = t("03-api-commands.txt");
    let env = start(vec![
        exp("api status\n\n"),
        send(s2c_containing(&t3, "UP 0 years")),
        exp("api uptime\n\n"),
        send(s2c_containing(&t3, "\n\n326\n")),
    ])
    .await;
    let r = http(env.rest, "GET", "/v1/status", &[("X-Request-ID", "req-42")], "").await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-request-id"), Some("req-42"));
    let d = &r.json()["data"];
    assert_eq!(d["systemStatus"], "ready");
    assert_eq!(d["sessions"]["count"]["total"], 38);
    assert_eq!(d["stackSizeKB"]["max"], 8192);
    let r = env.req("GET", "/health", "").await;
    assert_eq!(r.json(), json!({"status": "success", "message": "healthy", "esl": "connected", "uptime_s": 326}));
    assert_eq!(r.header("x-request-id").map(str::len), Some(36), "generated request id");
    let r = http(env.rest, "GET", "/nope", &[("X-Request-ID", "bad id")], "").await;
    assert_error(&r, 404, "no such endpoint");
    assert_eq!(r.header("x-request-id").map(str::len), Some(36), "an invalid request id is replaced");
    env.fake.assert_clean();
}

#[tokio::test]
async fn esl_down_is_503_and_token_is_enforced() {
    // FreeSWITCH drops the connection right after the handshake; reconnects find nothing.
    let env = start_with(vec![Step::Pause(Duration::from_millis(300)), Step::Close], Some("0123456789abcdef")).await;
    let auth = [("Authorization", "Bearer 0123456789abcdef")];
    assert_error(&http(env.rest, "POST", &format!("/v1/calls/{U}/park"), &[], "").await, 401, "bearer");
    assert_error(&http(env.rest, "POST", &format!("/v1/calls/{U}/park"), &[("Authorization", "Bearer nope")], "").await, 401, "bearer");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let r = http(env.rest, "POST", &format!("/v1/calls/{U}/park"), &auth, "").await;
    assert_error(&r, 503, "not connected");
    let r = env.req("GET", "/health", "").await;
    assert_error(&r, 503, "not connected");
    env.fake.assert_clean();
}
