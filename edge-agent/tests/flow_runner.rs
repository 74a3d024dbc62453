//! The flow runner's state machine, pure: ESL messages and `/flow` answers in, ESL
//! bytes and requests out, time as an argument. The connect reply is 13b's (with the
//! X- headers added, as in tests/flow_worker.rs); replies and events are recorded ones.

mod support;

use callplane::flow::wire::{Dial, DialStrategy, DialTarget, Gather, Outcome};
use edge_agent::esl::{Message, Parser};
use edge_agent::flow::esl_map::{self, DialConfig, MediaConfig};
use edge_agent::flow::runner::{Action, HttpResult, Runner, RunnerConfig, Upload};
use serde_json::{json, Value};
use support::*;

const CHAN: &str = "8f6566bf-738c-41e8-96f5-1b299758541d";
const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
const FLOW: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbt";

fn msg(bytes: &[u8]) -> Message {
    let mut p = Parser::default();
    p.feed(bytes);
    p.next().unwrap().expect("one message")
}

fn outbound(name: &str) -> Vec<Vec<u8>> {
    transcript(name).blocks.iter().filter(|b| b.dir == edge_agent::transcript::Dir::S2C && b.label.as_deref() == Some("outbound-8084")).map(|b| b.bytes.clone()).collect()
}

fn find(msgs: &[Vec<u8>], needles: &[&str]) -> Vec<u8> {
    msgs.iter().find(|m| needles.iter().all(|n| String::from_utf8_lossy(m).contains(n))).unwrap_or_else(|| panic!("{needles:?}")).clone()
}

fn drain(r: &mut Runner) -> Vec<Action> {
    std::iter::from_fn(|| r.poll_action()).collect()
}

fn esl_text(actions: &[Action]) -> Vec<String> {
    actions.iter().filter_map(|a| if let Action::Esl(b) = a { Some(String::from_utf8(b.clone()).unwrap()) } else { None }).collect()
}

fn flow_bodies(actions: &[Action]) -> Vec<Value> {
    actions.iter().filter_map(|a| if let Action::Flow { body } = a { Some(serde_json::from_str(body).unwrap()) } else { None }).collect()
}

fn ok(status: u16, v: Value) -> HttpResult {
    HttpResult::Response { status, body: v.to_string().into_bytes() }
}

/// A runner past `connect` with the start request out.
fn connected(with_ids: bool) -> (Runner, Vec<Action>) {
    let mut r = Runner::new(RunnerConfig { record_dir: "/rec".into(), ..Default::default() });
    assert_eq!(esl_text(&drain(&mut r)), ["connect\n\n"]);
    let reply = String::from_utf8(find(&outbound("13b-outbound-socket-myevents-json-linger-2.txt"), &["CHANNEL_DATA"])).unwrap();
    let reply = if with_ids {
        reply.replacen("Content-Type: command/reply", &format!("variable_sip_h_X-Account-Id: {ACC}\nvariable_sip_h_X-Flow-Id: {FLOW}\nvariable_sip_call_id: c1%40pbx\nContent-Type: command/reply"), 1)
    } else {
        reply
    };
    r.on_message(&msg(reply.as_bytes()), 0);
    let a = drain(&mut r);
    (r, a)
}

fn cmd(seq: u64, c: Value) -> Value {
    let mut v = c;
    v["callId"] = json!("c1@pbx");
    v["seq"] = json!(seq);
    v["done"] = json!(false);
    v
}

fn reply_ok() -> Vec<u8> {
    b"Content-Type: command/reply\nReply-Text: +OK\n\n".to_vec()
}

/// A recorded CHANNEL_EXECUTE_COMPLETE edited: Application-UUID, extra JSON fields.
fn complete(app_uuid: &str, edits: Value) -> Vec<u8> {
    let rec = find(&outbound("13b-outbound-socket-myevents-json-linger-2.txt"), &["CHANNEL_EXECUTE_COMPLETE", "\"Application\":\"playback\""]);
    let text = String::from_utf8(rec).unwrap();
    let (_, body) = text.split_once("\n\n").unwrap();
    let mut v: Value = serde_json::from_str(body).unwrap();
    v["Application-UUID"] = json!(app_uuid);
    for (k, val) in edits.as_object().unwrap() {
        v[k] = val.clone();
    }
    let body = v.to_string();
    format!("Content-Length: {}\nContent-Type: text/event-json\n\n{body}", body.len()).into_bytes()
}

fn event_uuid(esl: &str) -> String {
    esl.lines().find_map(|l| l.strip_prefix("Event-UUID: ")).expect("Event-UUID").to_string()
}

#[test]
fn connect_subscribes_lingers_and_starts_the_flow() {
    let (_, a) = connected(true);
    assert_eq!(esl_text(&a), ["myevents json\n\n", "linger\n\n"]);
    assert_eq!(flow_bodies(&a), [json!({"callId": "c1@pbx", "accountId": ACC, "flowId": FLOW, "vars": {"called": "7002", "caller": "0000000000"}})]);
}

#[test]
fn a_channel_without_flow_ids_is_hung_up_without_calling_callplane() {
    let (r, a) = connected(false);
    assert!(flow_bodies(&a).is_empty());
    let esl = esl_text(&a);
    assert_eq!(esl[2], format!("sendmsg {CHAN}\ncall-command: hangup\nhangup-cause: NORMAL_TEMPORARY_FAILURE\n\n"));
    assert_eq!(esl[3], "exit\n\n");
    assert!(r.is_finished() && a.last() == Some(&Action::Close));
}

#[test]
fn play_answers_then_plays_and_reports_played() {
    let (mut r, _) = connected(true);
    r.on_flow(ok(200, cmd(1, json!({"command": "play", "media": [{"type": "tts", "text": "Hi ${x}! it's", "voice": null, "language": null}, {"type": "url", "url": "https://cdn.example/a.mp3"}], "loops": 2}))), 10);
    let esl = esl_text(&drain(&mut r));
    assert_eq!(esl.len(), 2);
    assert!(esl[0].starts_with(&format!("sendmsg {CHAN}\ncall-command: execute\nexecute-app-name: answer\nevent-lock: true\nEvent-UUID: ")), "{}", esl[0]);
    let item = "say:flite:kal:Hi $ {x}. it\u{2019}s!http_cache://https://cdn.example/a.mp3";
    assert_eq!(esl[1], format!("sendmsg {CHAN}\ncall-command: execute\nexecute-app-name: playback\nexecute-app-arg: file_string://{item}!{item}\nevent-lock: true\nEvent-UUID: {}\n\n", event_uuid(&esl[1])));
    r.on_message(&msg(&reply_ok()), 11);
    r.on_message(&msg(&reply_ok()), 11);
    // The answer's completion decides nothing; the playback's does.
    r.on_message(&msg(&complete(&event_uuid(&esl[0]), json!({"Application": "answer", "Application-Response": "_none_"}))), 12);
    assert!(drain(&mut r).is_empty());
    r.on_message(&msg(&complete(&event_uuid(&esl[1]), json!({}))), 13);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 1, "outcome": "played"})]);
    // A failed playback is an error outcome.
    r.on_flow(ok(200, cmd(2, json!({"command": "play", "media": [{"type": "tts", "text": "x"}], "loops": 1}))), 20);
    let esl = esl_text(&drain(&mut r));
    assert_eq!(esl.len(), 1, "answered once");
    r.on_message(&msg(&complete(&event_uuid(&esl[0]), json!({"Application-Response": "FILE NOT FOUND"}))), 21);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 2, "outcome": "error:playback: FILE NOT FOUND"})]);
}

#[test]
fn gather_outcomes() {
    let g = |min, max| Gather { prompts: vec![], min_digits: min, max_digits: max, finish_key: Some("#".into()), first_digit_timeout_ms: 5000, inter_digit_timeout_ms: 3000, attempt: 1, max_attempts: 3 };
    assert_eq!(esl_map::gather_outcome(Some("7"), &g(1, 1)), Outcome::Digit('7'));
    assert_eq!(esl_map::gather_outcome(Some("123"), &g(1, 4)), Outcome::Digits("123".into()));
    assert_eq!(esl_map::gather_outcome(Some("12"), &g(3, 4)), Outcome::Invalid);
    assert_eq!(esl_map::gather_outcome(None, &g(1, 4)), Outcome::NoInput);
    assert_eq!(esl_map::gather_outcome(Some(""), &g(1, 4)), Outcome::NoInput);
    assert_eq!(esl_map::gather_outcome(Some("1a"), &g(1, 4)), Outcome::Invalid);
    assert_eq!(esl_map::pagd_arg(&g(1, 4), "say:flite:kal:Press one", 2), "1 4 1 5000 # 'say:flite:kal:Press one' silence_stream://250 cp_digits_2 [0-9*#]+ 3000");
    let mut none = g(1, 1);
    none.finish_key = None;
    assert_eq!(esl_map::pagd_arg(&none, "/c/a.wav", 9), "1 1 1 5000 none /c/a.wav silence_stream://250 cp_digits_9 [0-9*#]+ 3000");
}

#[test]
fn dial_strings_and_outcomes() {
    let t = |label: &str, uris: &[&str]| DialTarget { label: label.into(), uris: uris.iter().map(|s| s.to_string()).collect() };
    let mut d = Dial { targets: vec![t("a", &["sip:1002@acme.sip.io", "sip:1002@10.0.0.7"]), t("b", &["sip:+15557654321@edge"])], strategy: DialStrategy::Simultaneous, timeout_secs: 20, caller_id: None };
    let cfg = DialConfig { sip_profile: "callplane".into(), sip_edge: Some("sip:10.0.0.5:5060".into()) };
    let leg = |u: &str| format!("[leg_timeout=20]sofia/callplane/{u};fs_path=<sip:10.0.0.5:5060>");
    assert_eq!(esl_map::dial_string(&d, &cfg, &[]).unwrap().unwrap(), format!("{},{},{}", leg("sip:1002@acme.sip.io"), leg("sip:1002@10.0.0.7"), leg("sip:+15557654321@edge")));
    d.strategy = DialStrategy::Sequential;
    d.caller_id = Some(callplane::flow::wire::CallerId { number: Some("+15551230100".into()), name: Some("Acme, Inc.".into()) });
    assert_eq!(
        esl_map::dial_string(&d, &cfg, &[]).unwrap().unwrap(),
        format!("{{origination_caller_id_number=+15551230100,origination_caller_id_name='Acme Inc.'}}{},{}|{}", leg("sip:1002@acme.sip.io"), leg("sip:1002@10.0.0.7"), leg("sip:+15557654321@edge"))
    );
    d.targets = vec![t("nobody", &[])];
    assert_eq!(esl_map::dial_string(&d, &cfg, &[]), Ok(None));
    for evil in ["sip:a@b,sofia/x", "sip:a@b|x", "sip:{x}@b", "sip:a b@c", "tel:123"] {
        d.targets = vec![t("x", &[evil])];
        assert!(esl_map::dial_string(&d, &cfg, &[]).is_err(), "{evil}");
    }
    let vars = |pairs: &'static [(&'static str, &'static str)]| move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string());
    assert_eq!(esl_map::dial_outcome(vars(&[("variable_originate_disposition", "USER_BUSY"), ("variable_last_bridge_proto_specific_hangup_cause", "sip:486")]), None).0, Outcome::Busy);
    let (o, data) = esl_map::dial_outcome(vars(&[("variable_originate_disposition", "NO_ANSWER")]), None);
    assert_eq!((o, data.hangup_cause.as_deref()), (Outcome::NoAnswer, Some("NO_ANSWER")));
    let (o, data) = esl_map::dial_outcome(vars(&[("variable_DIALSTATUS", "CHANUNAVAIL"), ("variable_last_bridge_proto_specific_hangup_cause", "sip:503")]), None);
    assert_eq!((o, data.sip_status), (Outcome::Failed, Some(503)));
    let (o, data) = esl_map::dial_outcome(vars(&[("variable_originate_disposition", "SUCCESS"), ("variable_last_bridge_hangup_cause", "NORMAL_CLEARING")]), Some(61_250));
    assert_eq!((o, data.duration_ms, data.hangup_cause.as_deref()), (Outcome::Answered, Some(61_250), Some("NORMAL_CLEARING")));
}

#[test]
fn dial_bridges_without_answering_and_maps_the_result() {
    let (mut r, _) = connected(true);
    r.on_flow(ok(200, cmd(1, json!({"command": "dial", "targets": [{"label": "u", "uris": ["sip:1002@acme.sip.io"]}], "strategy": "simultaneous", "timeoutSecs": 20, "callerId": null}))), 0);
    let esl = esl_text(&drain(&mut r));
    assert_eq!(esl.len(), 1, "no answer before a bridge");
    assert!(esl[0].contains("execute-app-name: bridge\nexecute-app-arg: [leg_timeout=20]sofia/callplane/sip:1002@acme.sip.io\n"), "{}", esl[0]);
    r.on_message(&msg(&reply_ok()), 1);
    r.on_message(&msg(&complete(&event_uuid(&esl[0]), json!({"Application": "bridge", "variable_originate_disposition": "USER_BUSY", "variable_last_bridge_proto_specific_hangup_cause": "sip:486"}))), 2);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 1, "outcome": "busy", "data": {"sipStatus": 486, "hangupCause": "USER_BUSY"}})]);
}

#[test]
fn caller_hangup_ends_the_command_and_the_flow() {
    let t = outbound("13b-outbound-socket-myevents-json-linger-2.txt");
    let (mut r, _) = connected(true);
    r.on_flow(ok(200, cmd(1, json!({"command": "noop", "pauseMs": 1500}))), 0);
    let esl = esl_text(&drain(&mut r));
    assert!(esl[0].contains("execute-app-name: sleep\nexecute-app-arg: 1500\n"), "{}", esl[0]);
    r.on_message(&msg(&find(&t, &["\"Event-Name\":\"CHANNEL_HANGUP\""])), 5);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 1, "outcome": "hangup"})]);
    r.on_flow(ok(200, json!({"callId": "c1@pbx", "seq": 2, "command": "hangup", "cause": "normal", "reason": "call ended: abandoned", "done": true})), 6);
    let a = drain(&mut r);
    assert_eq!(esl_text(&a), ["exit\n\n"], "no hangup for a call already gone");
    assert!(r.is_finished());
}

#[test]
fn a_recording_is_uploaded_and_reported_even_after_the_caller_hung_up() {
    let t = outbound("13b-outbound-socket-myevents-json-linger-2.txt");
    let (mut r, _) = connected(true);
    r.on_flow(ok(200, cmd(3, json!({"command": "record", "key": "recordings/c1/3.wav", "uploadUrl": "https://cp.example/media/acc/recordings/c1/3.wav?exp=1&sig=x", "prompts": [], "beep": false, "maxSecs": 120, "silenceSecs": 0, "finishKey": null, "mailbox": null}))), 0);
    let esl = esl_text(&drain(&mut r));
    assert_eq!(esl.len(), 3, "answer, set, record: {esl:?}");
    assert!(esl[1].contains("execute-app-arg: playback_terminators=none\n"));
    assert!(esl[2].contains("execute-app-name: record\nexecute-app-arg: /rec/c1_pbx-3.wav 120\n"), "{}", esl[2]);
    r.on_message(&msg(&find(&t, &["\"Event-Name\":\"CHANNEL_HANGUP\""])), 5);
    assert!(flow_bodies(&drain(&mut r)).is_empty(), "the recording is finished first");
    r.on_message(&msg(&complete(&event_uuid(&esl[2]), json!({"Application": "record", "variable_record_ms": "4200"}))), 6);
    let a = drain(&mut r);
    assert_eq!(a, [Action::Upload { path: "/rec/c1_pbx-3.wav".into(), url: "https://cp.example/media/acc/recordings/c1/3.wav?exp=1&sig=x".into(), call_id: "c1@pbx".into(), duration_ms: Some(4200) }]);
    // A 503 is retried after the backoff; then it works.
    r.on_uploaded(Upload::Failed { status: Some(503), message: "busy".into() }, 7);
    assert!(drain(&mut r).is_empty());
    assert_eq!(r.poll_timeout(), Some(507));
    r.handle_timeout(507);
    assert!(matches!(drain(&mut r).as_slice(), [Action::Upload { .. }]));
    r.on_uploaded(Upload::Done { bytes: 67_244 }, 600);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 3, "outcome": "recorded:recordings/c1/3.wav", "data": {"durationMs": 4200, "bytes": 67244}})]);
    // The next command meets a call that is gone: `hangup`.
    r.on_flow(ok(200, cmd(4, json!({"command": "play", "media": [], "loops": 1}))), 700);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 4, "outcome": "hangup"})]);
}

#[test]
fn flow_requests_are_retried_with_the_same_body_then_a_409_ends_the_call() {
    let (mut r, a) = connected(true);
    let start = flow_bodies(&a);
    r.on_flow(HttpResult::Failed("connect: refused".into()), 100);
    assert_eq!(r.poll_timeout(), Some(600));
    r.handle_timeout(599);
    assert!(drain(&mut r).is_empty());
    r.handle_timeout(600);
    assert_eq!(flow_bodies(&drain(&mut r)), start, "the same request again");
    r.on_flow(ok(503, json!({"status": "error", "message": "down"})), 700);
    assert_eq!(r.poll_timeout(), Some(1700), "backoff doubles");
    r.handle_timeout(1700);
    drain(&mut r);
    r.on_flow(ok(409, json!({"status": "error", "message": "seq 1 is stale"})), 1800);
    let esl = esl_text(&drain(&mut r));
    assert_eq!(esl, [format!("sendmsg {CHAN}\ncall-command: hangup\nhangup-cause: NORMAL_TEMPORARY_FAILURE\n\n"), "exit\n\n".to_string()]);
    assert!(r.is_finished());
    // Bounded: a runner that never reaches callplane gives up after flow_attempts.
    let (mut r, _) = connected(true);
    for i in 0..6u64 {
        r.on_flow(HttpResult::Failed("timed out".into()), i * 10_000);
        r.handle_timeout(i * 10_000 + 9_000);
        drain(&mut r);
    }
    assert!(r.is_finished());
}

#[test]
fn hangup_command_hangs_up_with_the_cause_and_reports_hangup() {
    let t = outbound("13b-outbound-socket-myevents-json-linger-2.txt");
    let (mut r, _) = connected(true);
    r.on_flow(ok(200, cmd(7, json!({"command": "hangup", "cause": "busy", "reason": "x"}))), 0);
    assert_eq!(esl_text(&drain(&mut r)), [format!("sendmsg {CHAN}\ncall-command: hangup\nhangup-cause: USER_BUSY\n\n")]);
    r.on_message(&msg(&reply_ok()), 1);
    r.on_message(&msg(&find(&t, &["\"Event-Name\":\"CHANNEL_HANGUP\""])), 2);
    assert_eq!(flow_bodies(&drain(&mut r)), [json!({"callId": "c1@pbx", "seq": 7, "outcome": "hangup"})]);
}

#[test]
fn media_is_made_safe_for_freeswitch() {
    let cfg = MediaConfig::default();
    use callplane::flow::wire::Media;
    assert_eq!(esl_map::playable(&Media::Tts { text: "a\nb ${system(x)}".into(), voice: Some("slt".into()), language: None }, None, &cfg).unwrap(), "say:flite:slt:a b $ {system(x)}");
    assert_eq!(esl_map::playable(&Media::Tts { text: "x".into(), voice: Some("a:b".into()), language: None }, None, &cfg).unwrap(), "say:flite:kal:x");
    assert!(esl_map::playable(&Media::Url { url: "https://x/a b.wav".into() }, None, &cfg).is_err());
    assert!(esl_map::playable(&Media::File { key: "k".into(), url: "u".into() }, None, &cfg).is_err());
    assert!(esl_map::playable(&Media::File { key: "k".into(), url: "u".into() }, Some("/c/../etc/passwd"), &cfg).is_err());
    assert_eq!(edge_agent::flow::cache_path(std::path::Path::new("/c"), "https://cp.example/media/acc_1/prompts/a.wav?exp=1&sig=2").unwrap(), std::path::PathBuf::from("/c/acc_1/prompts/a.wav"));
    assert!(edge_agent::flow::cache_path(std::path::Path::new("/c"), "https://cp.example/media/acc_1/../x?sig=2").is_err());
    assert!(edge_agent::flow::path_and_query("https://cp.example/admin/x").is_err());
}
