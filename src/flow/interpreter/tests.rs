use super::*;
use crate::flow::definition::{parse, parse_and_validate};
use crate::flow::wire::{ConferenceRole, DialStrategy, QueueResult};
use serde_json::{json, Value};

const ACC: &str = "acc_01jf18ah3jeb5w6dfp27sgjsbt";
const FLOW: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbt";
const SUB: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbv";
const SUB2: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbw";
const CAL: &str = "cal_01jf18ah3jeb5w6dfp27sgjsbt";
const CAL2: &str = "cal_01jf18ah3jeb5w6dfp27sgjsbv";
const USR: &str = "usr_01jf18ah3jeb5w6dfp27sgjsbt";
const USR_NO_DEVICES: &str = "usr_01jf18ah3jeb5w6dfp27sgjsbv";
const USR_GONE: &str = "usr_01jf18ah3jeb5w6dfp27sgjsbw";
const DEV: &str = "dev_01jf18ah3jeb5w6dfp27sgjsbt";
const CALL: &str = "a84b4c76e66710@pbx";
const MEDIA: &str = "https://cp.example.com/media/acc_01jf18ah3jeb5w6dfp27sgjsbt/";

/// Wednesday 2026-11-18 15:00 UTC = 10:00 in New York: open.
const WED_OPEN: u64 = 1_795_014_000_000;
/// Sunday 2026-11-22 15:00 UTC: closed.
const SUN: u64 = 1_795_359_600_000;
/// Friday 2026-12-25 15:00 UTC: Christmas Day.
const XMAS: u64 = 1_798_210_800_000;

fn office() -> Calendar {
    let r = json!([["09:00", "17:00"]]);
    Calendar {
        time_zone: "America/New_York".into(),
        weekly: json!({"mon": r, "tue": r, "wed": r, "thu": r, "fri": r}),
        holidays: json!([{"date": "2026-12-25", "name": "Christmas Day"}]),
        overrides: Value::Null,
    }
}

fn env() -> Resolved {
    let mut e = Resolved::new(MEDIA);
    e.set_calendar(CAL, Some(office()));
    e.set_endpoint(Endpoint::User(USR.into()), Some(vec!["sip:1002@acme.sip.io".into()]));
    e.set_endpoint(Endpoint::User(USR_NO_DEVICES.into()), Some(vec![]));
    e.set_endpoint(Endpoint::User(USR_GONE.into()), None);
    e.set_endpoint(Endpoint::Device(DEV.into()), Some(vec!["sip:dev@10.0.0.5:5060".into(), "sip:dev@10.0.0.6:5060".into()]));
    e.set_endpoint(Endpoint::Number("+15557654321".into()), Some(vec!["sip:+15557654321@sip-edge.internal".into()]));
    e
}

fn def(v: Value) -> FlowDefinition {
    parse_and_validate(&v.to_string()).unwrap_or_else(|e| panic!("test flow invalid: {}", definition::describe(&e)))
}

fn req(vars: Vars) -> FlowStart {
    FlowStart { call_id: CALL.into(), account_id: ACC.into(), flow_id: FLOW.into(), vars }
}

fn out(s: &str) -> Outcome {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// A call on a virtual clock.
struct Call {
    s: Session,
    def: FlowDefinition,
    env: Resolved,
    now: u64,
}

impl Call {
    fn start_with(flow: Value, env: Resolved, now: u64, vars: Vars) -> (Call, CommandResponse) {
        let def = def(flow);
        let (s, r) = start(&req(vars), 1, &def, now, &env).unwrap();
        assert_eq!(r.seq, 1);
        assert_eq!(s.last_response, r);
        (Call { s, def, env, now }, r)
    }

    fn start(flow: Value) -> (Call, CommandResponse) {
        Call::start_with(flow, env(), WED_OPEN, Vars::new())
    }

    fn try_step(&mut self, seq: u64, outcome: &str) -> StepResult {
        step(&mut self.s, &self.def, seq, &out(outcome), None, self.now, &self.env)
    }

    /// Report `outcome` for the pending command 1 s later; returns the next command.
    fn step(&mut self, outcome: &str) -> CommandResponse {
        self.now += 1000;
        let seq = self.s.seq;
        let r = self.try_step(seq, outcome).unwrap_or_else(|e| panic!("step {seq} {outcome}: {e}"));
        assert!(!r.replayed);
        assert_eq!(r.response.seq, seq + 1);
        assert_eq!(r.response.call_id, CALL);
        r.response
    }
}

fn play(r: &CommandResponse) -> &Play {
    match &r.command {
        Command::Play(p) => p,
        other => panic!("expected play, got {other:?}"),
    }
}
fn gather(r: &CommandResponse) -> &Gather {
    match &r.command {
        Command::Gather(g) => g,
        other => panic!("expected gather, got {other:?}"),
    }
}
fn dial(r: &CommandResponse) -> &Dial {
    match &r.command {
        Command::Dial(d) => d,
        other => panic!("expected dial, got {other:?}"),
    }
}
fn hangup(r: &CommandResponse) -> &Hangup {
    match &r.command {
        Command::Hangup(h) => h,
        other => panic!("expected hangup, got {other:?}"),
    }
}
fn tts(text: &str) -> Media {
    Media::Tts { text: text.into(), voice: None, language: None }
}
fn say(text: &str, next: &str) -> Value {
    json!({"type": "play", "tts": {"text": text}, "next": next})
}
fn flow(start: &str, nodes: Value) -> Value {
    json!({"version": 1, "start": start, "nodes": nodes})
}
fn events(s: &Session) -> Vec<TraceEvent> {
    s.trace.iter().map(|t| t.event).collect()
}
fn details(s: &Session) -> Vec<String> {
    s.trace.iter().map(|t| t.detail.clone()).collect()
}

/// The demo IVR asked for by the issue (also in docs/flows.md).
fn demo_ivr() -> Value {
    json!({"version": 1, "start": "welcome", "nodes": {
        "welcome": {"type": "play", "tts": {"text": "Thank you for calling Acme."}, "next": "hours"},
        "hours": {"type": "branch", "cases": [{"when": {"calendar": CAL, "is": "open"}, "next": "main"}], "default": "after_hours"},
        "main": {"type": "menu", "prompt": {"tts": {"text": "For sales press 1. For Bob press 2. To leave a message press 3."}},
                 "options": {"1": "sales", "2": "bob", "3": "voicemail"}, "retries": 2,
                 "invalidPrompt": {"tts": {"text": "Sorry, that is not a valid choice."}},
                 "noInputPrompt": {"tts": {"text": "Sorry, I did not hear anything."}}, "fallback": "voicemail"},
        "sales": {"type": "enqueue", "queue": "sales", "holdMusic": {"media": "moh/default.wav"}, "maxWaitSecs": 300,
                  "announce": {"everySecs": 60, "position": true}, "on": {"answered": "bye", "abandoned": "bye"}, "next": "voicemail"},
        "bob": {"type": "dial", "targets": [{"user": USR}], "timeoutSecs": 20, "on": {"answered": "bye"}, "next": "voicemail"},
        "after_hours": {"type": "play", "tts": {"text": "We are closed. Our hours are 9 to 5, Monday to Friday."}, "next": "voicemail"},
        "voicemail": {"type": "record", "prompt": {"tts": {"text": "Please leave a message after the tone."}}, "maxSecs": 120, "mailbox": "sales",
                      "on": {"recorded": "thanks"}, "next": "bye"},
        "thanks": {"type": "play", "tts": {"text": "Thank you. Goodbye."}, "next": "bye"},
        "bye": {"type": "hangup"}
    }})
}

// ---------------------------------------------------------------------------------------
// Whole flows
// ---------------------------------------------------------------------------------------

#[test]
fn demo_definition_from_start_to_hangup() {
    let demo = r#"{"version":1,"start":"welcome","nodes":{"welcome":{"type":"play","tts":{"text":"Welcome to Acme"},"next":"bye"},"bye":{"type":"hangup"}}}"#;
    let def = parse_and_validate(demo).unwrap();
    let env = env();
    let (mut s, r) = start(&req(Vars::new()), 3, &def, WED_OPEN, &env).unwrap();
    assert_eq!(r.command, Command::Play(Play { media: vec![tts("Welcome to Acme")], loops: 1 }));
    assert!(!r.done);
    assert_eq!(s.pinned(), (FLOW, 3));
    assert_eq!(s.status, Status::Running);
    let r = step(&mut s, &def, 1, &Outcome::Played, None, WED_OPEN + 2500, &env).unwrap();
    assert_eq!(r.ended, None);
    assert_eq!(r.response.command, Command::Hangup(Hangup { cause: HangupCause::Normal, reason: "hangup node \"bye\"".into() }));
    assert!(!r.response.done, "the edge still has to hang up and confirm");
    assert!(matches!(s.status, Status::Ending { disposition: Disposition::Completed, .. }));
    let r = step(&mut s, &def, 2, &Outcome::Hangup, None, WED_OPEN + 2600, &env).unwrap();
    assert_eq!(r.ended, Some(Disposition::Completed));
    assert!(r.response.done);
    assert_eq!(r.response.seq, 3);
    assert_eq!(hangup(&r.response).reason, "call ended: completed");
    assert!(s.is_closed());
    assert_eq!(s.deadline_ms(), None);
    assert_eq!(s.steps, 2);
    assert_eq!(events(&s), [TraceEvent::Start, TraceEvent::Command, TraceEvent::Outcome, TraceEvent::Command, TraceEvent::Outcome, TraceEvent::End]);
    assert_eq!(s.trace[0].detail, format!("flow {FLOW} v3 started for call \"{CALL}\" (vars: none)"));
    assert_eq!(s.trace[1].detail, "play tts \"Welcome to Acme\"");
    assert_eq!((s.trace[2].latency_ms, s.trace[2].detail.as_str()), (Some(2500), "played"));
    assert_eq!(s.trace[4].latency_ms, Some(100));
    assert_eq!(s.trace[5].detail, "call ended: completed: hangup node \"bye\"");
}

#[test]
fn demo_ivr_open_hours_menu_to_sales_queue() {
    let (mut c, r) = Call::start(demo_ivr());
    assert_eq!(play(&r).media, vec![tts("Thank you for calling Acme.")]);
    let r = c.step("played");
    let g = gather(&r);
    assert_eq!(g.prompts, vec![tts("For sales press 1. For Bob press 2. To leave a message press 3.")]);
    assert_eq!((g.min_digits, g.max_digits, g.finish_key.as_deref(), g.attempt, g.max_attempts), (1, 1, None, 1, 3));
    assert_eq!((g.first_digit_timeout_ms, g.inter_digit_timeout_ms), (5000, 2000));
    let branch_note = c.s.trace.iter().find(|t| t.node.as_deref() == Some("hours")).unwrap();
    assert_eq!(
        branch_note.detail,
        format!("branch: case 0 matched → \"main\" [calendar {CAL}: open (weekly wed 09:00-17:00, local 2026-11-18T10:00:01-05:00)]")
    );
    let r = c.step("digit:1");
    let Command::Enqueue(e) = &r.command else { panic!("{r:?}") };
    assert_eq!(e.queue, "sales");
    assert_eq!(e.hold_music, Some(Media::File { key: "moh/default.wav".into(), url: format!("{MEDIA}moh/default.wav") }));
    assert_eq!(e.max_wait_secs, 300);
    assert_eq!(e.announce, Some(Announce { every_secs: 60, position: true, prompt: None }));
    assert_eq!(c.s.vars["digits"], "1");
    let r = c.step("queue:answered");
    assert_eq!(hangup(&r).cause, HangupCause::Normal);
    let r = c.step("hangup");
    assert!(r.done);
    assert_eq!(c.s.disposition(), Some(Disposition::Completed));
}

#[test]
fn demo_ivr_closed_and_holiday_go_to_after_hours_then_voicemail() {
    for now in [SUN, XMAS] {
        let (mut c, _) = Call::start_with(demo_ivr(), env(), now, Vars::new());
        let r = c.step("played");
        assert_eq!(play(&r).media, vec![tts("We are closed. Our hours are 9 to 5, Monday to Friday.")]);
        let r = c.step("played");
        let Command::Record(rec) = &r.command else { panic!("{r:?}") };
        assert!(rec.key.starts_with("recordings/a84b4c76e66710-pbx-") && rec.key.ends_with("/3.wav"), "{}", rec.key);
        assert_eq!(rec.upload_url, format!("{MEDIA}{}", rec.key));
        assert_eq!(rec.prompts, vec![tts("Please leave a message after the tone.")]);
        assert_eq!((rec.beep, rec.max_secs, rec.silence_secs, rec.finish_key.as_deref(), rec.mailbox.as_deref()), (true, 120, 5, Some("#"), Some("sales")));
        let key = rec.key.clone();
        let r = c.step(&format!("recorded:{key}"));
        assert_eq!(play(&r).media, vec![tts("Thank you. Goodbye.")]);
        assert_eq!(c.s.vars["recording"], key);
    }
    // the trace says why
    let (mut c, _) = Call::start_with(demo_ivr(), env(), XMAS, Vars::new());
    c.step("played");
    assert!(details(&c.s).iter().any(|d| d.contains("branch: no case matched → default \"after_hours\"")
        && d.contains(&format!("calendar {CAL}: holiday (holiday 2026-12-25 Christmas Day"))));
}

// ---------------------------------------------------------------------------------------
// Node types
// ---------------------------------------------------------------------------------------

#[test]
fn play_media_key_url_and_tts_with_variables() {
    let (mut c, r) = Call::start_with(
        flow(
            "a",
            json!({
                "a": {"type": "play", "media": "prompts/hello.wav", "loops": 3, "next": "b"},
                "b": {"type": "play", "url": "https://cdn.example.com/x.mp3", "next": "c"},
                "c": {"type": "play", "tts": {"text": "Hi ${name}, from ${caller}.", "voice": "en-US-Wavenet-D", "language": "en-US"}}
            }),
        ),
        env(),
        WED_OPEN,
        Vars::from([("name".into(), "Ann".into()), ("caller".into(), "+15550001111".into())]),
    );
    assert_eq!(
        r.command,
        Command::Play(Play { media: vec![Media::File { key: "prompts/hello.wav".into(), url: format!("{MEDIA}prompts/hello.wav") }], loops: 3 })
    );
    let r = c.step("played");
    assert_eq!(play(&r).media, vec![Media::Url { url: "https://cdn.example.com/x.mp3".into() }]);
    let r = c.step("played");
    assert_eq!(
        play(&r).media,
        vec![Media::Tts { text: "Hi Ann, from +15550001111.".into(), voice: Some("en-US-Wavenet-D".into()), language: Some("en-US".into()) }]
    );
    // "c" has no next: end of flow
    let r = c.step("played");
    assert_eq!(hangup(&r).reason, "end of flow after node \"c\"");
    assert!(matches!(c.s.status, Status::Ending { disposition: Disposition::Completed, .. }));
}

fn ext_gather() -> Value {
    flow(
        "g",
        json!({
            "g": {"type": "gather", "prompt": {"tts": {"text": "Extension?"}}, "minDigits": 1, "maxDigits": 4,
                  "firstDigitTimeoutMs": 4000, "interDigitTimeoutMs": 1500,
                  "branches": {"0": "operator"}, "patterns": [{"pattern": "1XX", "next": "ext"}, {"pattern": "9.", "next": "outside"}],
                  "default": "other", "saveAs": "entered", "fallback": "bye"},
            "operator": say("operator", "bye"), "ext": say("ext ${entered}", "bye"), "outside": say("outside", "bye"), "other": say("other", "bye"),
            "bye": {"type": "hangup"}
        }),
    )
}

#[test]
fn gather_branches_by_exact_digits_then_patterns_then_default() {
    let (_, r) = Call::start(ext_gather());
    assert_eq!(
        r.command,
        Command::Gather(Gather {
            prompts: vec![tts("Extension?")],
            min_digits: 1,
            max_digits: 4,
            finish_key: Some("#".into()),
            first_digit_timeout_ms: 4000,
            inter_digit_timeout_ms: 1500,
            attempt: 1,
            max_attempts: 3,
        })
    );
    for (input, spoken) in [("digit:0", "operator"), ("digits:123", "ext 123"), ("digits:9555", "outside"), ("digits:77", "other"), ("digit:*", "other")] {
        let (mut c, _) = Call::start(ext_gather());
        let r = c.step(input);
        assert_eq!(play(&r).media, vec![tts(spoken)], "{input}");
        assert_eq!(c.s.vars["entered"], input.split(':').nth(1).unwrap());
    }
}

#[test]
fn gather_retries_with_invalid_and_no_input_prompts_then_fallback() {
    let menu = flow(
        "g",
        json!({
            "g": {"type": "gather", "prompt": {"media": "prompts/menu.wav"}, "branches": {"1": "one"}, "retries": 2,
                  "invalidPrompt": {"media": "prompts/invalid.wav"}, "noInputPrompt": {"tts": {"text": "Are you there?"}}, "fallback": "operator"},
            "one": say("one", "bye"), "operator": say("operator", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let file = |k: &str| Media::File { key: k.into(), url: format!("{MEDIA}{k}") };
    let (mut c, r) = Call::start(menu.clone());
    assert_eq!(gather(&r).prompts, vec![file("prompts/menu.wav")]);
    let r = c.step("digit:7");
    assert_eq!(gather(&r).prompts, vec![file("prompts/invalid.wav"), file("prompts/menu.wav")]);
    assert_eq!((gather(&r).attempt, gather(&r).max_attempts), (2, 3));
    assert_eq!(c.s.vars["digits"], "7", "the input is kept even when it matches nothing");
    let r = c.step("no-input");
    assert_eq!(gather(&r).prompts, vec![tts("Are you there?"), file("prompts/menu.wav")]);
    assert_eq!(gather(&r).attempt, 3);
    let r = c.step("invalid");
    assert_eq!(play(&r).media, vec![tts("operator")], "retries exhausted: fallback");
    let notes: Vec<String> = c.s.trace.iter().filter(|t| t.event == TraceEvent::Node).map(|t| t.detail.clone()).collect();
    assert_eq!(
        notes,
        [
            "input \"7\" matches no branch; retry (attempt 2/3)",
            "no input; retry (attempt 3/3)",
            "invalid input; no retries left after 3 attempts → fallback \"operator\""
        ]
    );
    // success on the last attempt still branches
    let (mut c, _) = Call::start(menu.clone());
    c.step("no-input");
    c.step("no-input");
    assert_eq!(play(&c.step("digit:1")).media, vec![tts("one")]);
    // input longer than maxDigits counts as invalid
    let (mut c, _) = Call::start(menu);
    assert_eq!(gather(&c.step("digits:11")).attempt, 2);
}

#[test]
fn gather_without_fallback_ends_the_flow_and_retries_zero_means_one_attempt() {
    let (mut c, r) = Call::start(flow(
        "g",
        json!({
            "g": {"type": "gather", "prompt": {"tts": {"text": "x"}}, "branches": {"1": "bye"}, "retries": 0},
            "bye": {"type": "hangup"}
        }),
    ));
    assert_eq!(gather(&r).max_attempts, 1);
    let r = c.step("no-input");
    assert_eq!(hangup(&r).reason, "end of flow after node \"g\"");
}

#[test]
fn retry_count_resets_when_the_gather_is_entered_again() {
    let (mut c, _) = Call::start(flow(
        "g",
        json!({
            "g": {"type": "gather", "prompt": {"tts": {"text": "x"}}, "branches": {"9": "again"}, "retries": 1, "fallback": "bye"},
            "again": say("again", "g"),
            "bye": {"type": "hangup"}
        }),
    ));
    assert_eq!(gather(&c.step("no-input")).attempt, 2);
    c.step("digit:9");
    let r = c.step("played");
    assert_eq!(gather(&r).attempt, 1, "a fresh entry starts over");
    assert_eq!(gather(&c.step("no-input")).attempt, 2);
    assert_eq!(hangup(&c.step("no-input")).cause, HangupCause::Normal);
}

#[test]
fn menu_sugar() {
    let (mut c, r) = Call::start(flow(
        "m",
        json!({
            "m": {"type": "menu", "prompt": {"tts": {"text": "Pick"}}, "options": {"1": "a", "22": "b", "*": "a"}, "timeoutMs": 7000, "fallback": "b"},
            "a": say("a", "bye"), "b": say("b", "bye"), "bye": {"type": "hangup"}
        }),
    ));
    let g = gather(&r);
    assert_eq!((g.min_digits, g.max_digits, g.finish_key.as_deref(), g.first_digit_timeout_ms, g.max_attempts), (1, 2, Some("#"), 7000, 3));
    assert_eq!(play(&c.step("digits:22")).media, vec![tts("b")]);
    let (mut c, _) = Call::start(flow(
        "m",
        json!({
            "m": {"type": "menu", "prompt": {"tts": {"text": "Pick"}}, "options": {"1": "a"}, "retries": 0, "fallback": "b"},
            "a": say("a", "bye"), "b": say("b", "bye"), "bye": {"type": "hangup"}
        }),
    ));
    assert_eq!(play(&c.step("digit:2")).media, vec![tts("b")], "no default in a menu: wrong key → retry/fallback");
}

fn dial_flow(targets: Value, strategy: &str) -> Value {
    flow(
        "d",
        json!({
            "d": {"type": "dial", "targets": targets, "strategy": strategy, "timeoutSecs": 25, "callerId": {"number": "+15551230100", "name": "Acme"},
                  "on": {"answered": "done", "busy": "busy", "failed": "failed"}, "next": "other"},
            "done": {"type": "hangup"}, "busy": say("busy", "done"), "failed": say("failed", "done"), "other": say("other", "done")
        }),
    )
}

#[test]
fn dial_resolves_targets_and_branches_on_each_outcome() {
    let targets = json!([{"user": USR}, {"device": DEV}, {"number": "+15557654321"}, {"sip": "sip:bob@example.com"}]);
    let (_, r) = Call::start(dial_flow(targets.clone(), "sequential"));
    assert_eq!(
        r.command,
        Command::Dial(Dial {
            targets: vec![
                DialTarget { label: format!("user {USR}"), uris: vec!["sip:1002@acme.sip.io".into()] },
                DialTarget { label: format!("device {DEV}"), uris: vec!["sip:dev@10.0.0.5:5060".into(), "sip:dev@10.0.0.6:5060".into()] },
                DialTarget { label: "number +15557654321".into(), uris: vec!["sip:+15557654321@sip-edge.internal".into()] },
                DialTarget { label: "sip sip:bob@example.com".into(), uris: vec!["sip:bob@example.com".into()] },
            ],
            strategy: DialStrategy::Sequential,
            timeout_secs: 25,
            caller_id: Some(CallerId { number: Some("+15551230100".into()), name: Some("Acme".into()) }),
        })
    );
    for (outcome, expect) in [("busy", "busy"), ("failed", "failed"), ("no-answer", "other")] {
        let (mut c, _) = Call::start(dial_flow(targets.clone(), "simultaneous"));
        assert_eq!(play(&c.step(outcome)).media, vec![tts(expect)], "{outcome}");
    }
    let (mut c, _) = Call::start(dial_flow(targets, "simultaneous"));
    assert_eq!(hangup(&c.step("answered")).reason, "hangup node \"done\"");
}

#[test]
fn dial_with_nothing_reachable_takes_the_failed_branch_without_ringing() {
    let (c, r) = Call::start(dial_flow(json!([{"user": USR_NO_DEVICES}, {"user": USR_GONE}]), "simultaneous"));
    assert_eq!(play(&r).media, vec![tts("failed")]);
    assert_eq!(r.seq, 1);
    let notes: Vec<&str> = c.s.trace.iter().filter(|t| t.event == TraceEvent::Node).map(|t| t.detail.as_str()).collect();
    assert_eq!(
        notes,
        [
            format!("dial: user {USR_NO_DEVICES}: nothing reachable; user {USR_GONE}: not found").as_str(),
            "dial: no target reachable, taking the failed branch → \"failed\""
        ]
    );
    // unreachable ones are skipped when another target works
    let (_, r) = Call::start(dial_flow(json!([{"user": USR_GONE}, {"user": USR}]), "simultaneous"));
    assert_eq!(dial(&r).targets.len(), 1);
}

#[test]
fn enqueue_outcomes() {
    let q = flow(
        "q",
        json!({
            "q": {"type": "enqueue", "queue": "support", "maxWaitSecs": 120, "on": {"timeout": "vm", "full": "full", "error": "full"}, "next": "after"},
            "vm": say("vm", "bye"), "full": say("full", "bye"), "after": say("after", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let (_, r) = Call::start(q.clone());
    assert_eq!(r.command, Command::Enqueue(Enqueue { queue: "support".into(), hold_music: None, max_wait_secs: 120, announce: None }));
    for (o, expect) in
        [("queue:timeout", "vm"), ("queue:full", "full"), ("queue:answered", "after"), ("queue:abandoned", "after"), ("error:queue service down", "full")]
    {
        let (mut c, _) = Call::start(q.clone());
        assert_eq!(play(&c.step(o)).media, vec![tts(expect)], "{o}");
    }
}

#[test]
fn record_outcomes_and_key_check() {
    let rec = flow(
        "r",
        json!({
            "r": {"type": "record", "beep": false, "maxSecs": 30, "silenceSecs": 0, "finishKey": null, "saveAs": "msg", "on": {"no-input": "none"}, "next": "thanks"},
            "none": say("nothing recorded", "bye"), "thanks": say("thanks ${msg}", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let (mut c, r) = Call::start(rec.clone());
    let Command::Record(cmd) = &r.command else { panic!() };
    assert_eq!((cmd.beep, cmd.max_secs, cmd.silence_secs, cmd.finish_key.as_deref(), cmd.mailbox.as_deref()), (false, 30, 0, None, None));
    assert!(cmd.prompts.is_empty());
    let key = cmd.key.clone();
    // another key than the one handed out is refused, and nothing changes
    let before = c.s.clone();
    let e = c.try_step(1, "recorded:recordings/other/1.wav").unwrap_err();
    assert_eq!(e, FlowError::BadOutcome(format!("outcome \"recorded:recordings/other/1.wav\": the record command's key is {key}")));
    assert_eq!(c.s, before);
    let r = c.step(&format!("recorded:{key}"));
    assert_eq!(play(&r).media, vec![tts(&format!("thanks {key}"))]);
    assert_eq!(c.s.vars["msg"], key);
    let (mut c, _) = Call::start(rec);
    assert_eq!(play(&c.step("no-input")).media, vec![tts("nothing recorded")]);
}

#[test]
fn recording_keys_are_safe_and_distinct() {
    assert_eq!(recording_key("abc-123_x.y", 4), "recordings/abc-123_x.y/4.wav");
    let k1 = recording_key("a84b4c76e66710@pbx", 3);
    let k2 = recording_key("a84b4c76e66710-pbx", 3);
    assert_ne!(k1, k2, "sanitizing must not make two call ids collide");
    assert!(k1.starts_with("recordings/a84b4c76e66710-pbx-") && k1.ends_with("/3.wav"), "{k1}");
    for id in ["a@b", "../../etc", ".hidden", "@@@", &"x".repeat(300), "ü", "a/b"] {
        let k = recording_key(id, 1);
        assert!(wire::is_safe_media_key(&k), "{id:?} → {k}");
        assert!(format!("recorded:{k}").parse::<Outcome>().is_ok());
    }
}

#[test]
fn conference_room_is_scoped_to_the_account() {
    let conf = flow(
        "c",
        json!({
            "c": {"type": "conference", "room": "standup", "role": "muted", "on": {"failed": "sorry"}, "next": "after"},
            "sorry": say("sorry", "bye"), "after": say("after", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let (mut c, r) = Call::start(conf.clone());
    assert_eq!(r.command, Command::Conference(Conference { room: format!("{ACC}-standup"), name: "standup".into(), role: ConferenceRole::Muted }));
    assert_eq!(play(&c.step("played")).media, vec![tts("after")]);
    let (mut c, _) = Call::start(conf);
    assert_eq!(play(&c.step("failed")).media, vec![tts("sorry")]);
}

#[test]
fn set_goto_noop_and_conditions_on_variables() {
    let f = flow(
        "s",
        json!({
            "s": {"type": "set", "vars": {"lang": "fr", "greeting": "Bonjour ${caller}", "lang_was": "${lang}", "tmp": null}, "next": "n"},
            "n": {"type": "noop", "next": "g"},
            "g": {"type": "goto", "target": "b"},
            "b": {"type": "branch", "cases": [
                {"when": {"var": "caller", "prefix": "+44"}, "next": "uk"},
                {"when": {"all": [{"var": "lang", "in": ["fr", "de"]}, {"not": {"var": "vip", "exists": true}}]}, "next": "eu"},
                {"when": {"var": "tmp", "exists": false}, "next": "other"}
            ], "default": "other"},
            "uk": say("uk", "bye"), "eu": say("${greeting} (${lang_was})", "bye"), "other": say("other", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let vars = Vars::from([("caller".into(), "+33123".into()), ("lang".into(), "en".into()), ("tmp".into(), "x".into())]);
    let (c, r) = Call::start_with(f.clone(), env(), WED_OPEN, vars);
    assert_eq!(play(&r).media, vec![tts("Bonjour +33123 (en)")], "set values read the variables as they were before the node");
    assert_eq!(c.s.vars.get("tmp"), None, "null unsets");
    assert_eq!(c.s.vars["lang"], "fr");
    assert!(details(&c.s).contains(&"set greeting=\"Bonjour +33123\", lang=\"fr\", lang_was=\"en\", tmp unset".to_string()));
    assert!(details(&c.s).contains(&"branch: case 1 matched → \"eu\"".to_string()));
    let (_, r) = Call::start_with(f.clone(), env(), WED_OPEN, Vars::from([("caller".into(), "+4420".into())]));
    assert_eq!(play(&r).media, vec![tts("uk")]);
    let (_, r) = Call::start_with(f, env(), WED_OPEN, Vars::from([("caller".into(), "+1".into()), ("vip".into(), "yes".into())]));
    assert_eq!(play(&r).media, vec![tts("other")]);

    // equals / notEquals / pattern on collected digits; a missing variable
    let cond = |when: Value, vars: Vars| {
        let f = flow(
            "b",
            json!({
                "b": {"type": "branch", "cases": [{"when": when, "next": "yes"}], "default": "no"},
                "yes": say("yes", "bye"), "no": say("no", "bye"), "bye": {"type": "hangup"}
            }),
        );
        let (_, r) = Call::start_with(f, env(), WED_OPEN, vars);
        play(&r).media[0] == tts("yes")
    };
    let d = |v: &str| Vars::from([("digits".into(), v.into())]);
    assert!(cond(json!({"var": "digits", "equals": "42"}), d("42")));
    assert!(!cond(json!({"var": "digits", "equals": "42"}), d("420")));
    assert!(!cond(json!({"var": "digits", "equals": ""}), Vars::new()), "a missing variable equals nothing");
    assert!(cond(json!({"var": "digits", "notEquals": "42"}), Vars::new()));
    assert!(!cond(json!({"var": "digits", "notEquals": "42"}), d("42")));
    assert!(cond(json!({"var": "digits", "pattern": "[1-3]X"}), d("25")));
    assert!(!cond(json!({"var": "digits", "pattern": "[1-3]X"}), d("45")));
    assert!(!cond(json!({"var": "digits", "pattern": "X."}), Vars::new()));
    assert!(!cond(json!({"var": "digits", "prefix": "4"}), Vars::new()));
    assert!(cond(json!({"any": [{"var": "a", "exists": true}, {"var": "digits", "in": ["1", "2"]}]}), d("2")));
    assert!(!cond(json!({"all": [{"var": "a", "exists": false}, {"var": "digits", "in": ["1", "2"]}]}), d("3")));
}

#[test]
fn business_hours_open_closed_holiday_and_missing_calendar() {
    let f = |is: Value| {
        flow(
            "b",
            json!({
                "b": {"type": "branch", "cases": [{"when": {"calendar": CAL, "is": is}, "next": "yes"}], "default": "no"},
                "yes": say("yes", "bye"), "no": say("no", "bye"), "bye": {"type": "hangup"}
            }),
        )
    };
    let taken = |is: Value, now: u64| {
        let (_, r) = Call::start_with(f(is), env(), now, Vars::new());
        play(&r).media[0] == tts("yes")
    };
    assert!(taken(json!("open"), WED_OPEN));
    assert!(!taken(json!("open"), SUN));
    assert!(!taken(json!("open"), XMAS));
    assert!(taken(json!("closed"), SUN));
    assert!(!taken(json!("closed"), XMAS), "a holiday is not 'closed'");
    assert!(taken(json!("holiday"), XMAS));
    assert!(taken(json!(["closed", "holiday"]), XMAS));
    assert!(taken(json!(["closed", "holiday"]), SUN));
    // 16:59:59 local is open, 17:00 closed (virtual clock)
    assert!(taken(json!("open"), WED_OPEN + 7 * 3_600_000 - 1000));
    assert!(!taken(json!("open"), WED_OPEN + 7 * 3_600_000));
    // a calendar that does not exist: condition false, said in the trace
    let mut e = env();
    e.set_calendar(CAL, None);
    let (c, r) = Call::start_with(f(json!("closed")), e, SUN, Vars::new());
    assert_eq!(play(&r).media, vec![tts("no")]);
    assert!(details(&c.s).iter().any(|d| d.contains(&format!("calendar {CAL} not found: condition false"))));
    // a calendar that does not compile: same
    let mut e = env();
    e.set_calendar(CAL, Some(Calendar { time_zone: "Mars/Base".into(), weekly: Value::Null, holidays: Value::Null, overrides: Value::Null }));
    let (c, r) = Call::start_with(f(json!("closed")), e, SUN, Vars::new());
    assert_eq!(play(&r).media, vec![tts("no")]);
    assert!(details(&c.s).iter().any(|d| d.contains(&format!("calendar {CAL} unusable (time_zone: unknown time zone"))));
}

#[test]
fn unloaded_lookups_are_asked_for_and_leave_nothing_behind() {
    // nothing loaded: start only needs what its first nodes use (a play)
    let mut e = Resolved::new(MEDIA);
    let d = def(demo_ivr());
    let (mut s, r) = start(&req(Vars::new()), 1, &d, WED_OPEN, &e).unwrap();
    assert_eq!(play(&r).media, vec![tts("Thank you for calling Acme.")]);
    // the business-hours branch after it needs the calendar; the session is untouched
    let before = s.clone();
    let err = step(&mut s, &d, 1, &Outcome::Played, None, WED_OPEN + 1000, &e).unwrap_err();
    assert_eq!(err, FlowError::Needs(vec![Need::Calendar { id: CAL.into() }]));
    assert_eq!(ApiError::from(err).status, 500);
    assert_eq!(s, before);
    e.set_calendar(CAL, Some(office()));
    step(&mut s, &d, 1, &Outcome::Played, None, WED_OPEN + 1000, &e).unwrap();
    // all unloaded dial targets are asked for at once
    let before = s.clone();
    let f = def(dial_flow(json!([{"user": USR}, {"number": "+15557654321"}, {"sip": "sip:x@y"}]), "simultaneous"));
    let err = start(&req(Vars::new()), 1, &f, WED_OPEN, &e).unwrap_err();
    assert_eq!(
        err,
        FlowError::Needs(vec![Need::Dial { endpoint: Endpoint::User(USR.into()) }, Need::Dial { endpoint: Endpoint::Number("+15557654321".into()) }])
    );
    let err = step(&mut s, &d, 2, &out("digit:2"), None, WED_OPEN + 2000, &e).unwrap_err();
    assert_eq!(err, FlowError::Needs(vec![Need::Dial { endpoint: Endpoint::User(USR.into()) }]));
    assert_eq!(s, before, "a step that needs a lookup changes nothing");
    e.set_endpoint(Endpoint::User(USR.into()), Some(vec!["sip:1002@acme.sip.io".into()]));
    let r = step(&mut s, &d, 2, &out("digit:2"), None, WED_OPEN + 2000, &e).unwrap();
    assert_eq!(dial(&r.response).targets[0].uris, ["sip:1002@acme.sip.io"]);
    // the need list serializes for logs
    assert_eq!(serde_json::to_value(Need::Flow { flow_id: SUB.into(), version: Some(2) }).unwrap(), json!({"need": "flow", "flow_id": SUB, "version": 2}));
}

#[test]
fn calendar_lookups_short_circuit() {
    let f = flow(
        "b",
        json!({
            "b": {"type": "branch", "cases": [
                {"when": {"any": [{"var": "vip", "exists": true}, {"calendar": CAL2, "is": "open"}]}, "next": "yes"}
            ], "default": "no"},
            "yes": say("yes", "bye"), "no": say("no", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let d = def(f);
    let e = env();
    // vip set: the second calendar is never needed
    let (_, r) = start(&req(Vars::from([("vip".into(), "1".into())])), 1, &d, WED_OPEN, &e).unwrap();
    assert_eq!(play(&r).media, vec![tts("yes")]);
    assert_eq!(start(&req(Vars::new()), 1, &d, WED_OPEN, &e).unwrap_err(), FlowError::Needs(vec![Need::Calendar { id: CAL2.into() }]));
    // all: a false first condition means the calendar is never needed
    let f = flow(
        "b",
        json!({
            "b": {"type": "branch", "cases": [
                {"when": {"all": [{"var": "vip", "exists": true}, {"calendar": CAL2, "is": "open"}]}, "next": "yes"}
            ], "default": "no"},
            "yes": say("yes", "bye"), "no": say("no", "bye"), "bye": {"type": "hangup"}
        }),
    );
    let d = def(f);
    let (_, r) = start(&req(Vars::new()), 1, &d, WED_OPEN, &e).unwrap();
    assert_eq!(play(&r).media, vec![tts("no")]);
    assert_eq!(
        start(&req(Vars::from([("vip".into(), "1".into())])), 1, &d, WED_OPEN, &e).unwrap_err(),
        FlowError::Needs(vec![Need::Calendar { id: CAL2.into() }])
    );
}

#[test]
fn pause_and_hangup_node_cause() {
    let (mut c, r) = Call::start(flow(
        "p",
        json!({
            "p": {"type": "pause", "ms": 1500, "next": "h"},
            "h": {"type": "hangup", "cause": "busy", "reason": "closed for lunch"}
        }),
    ));
    assert_eq!(r.command, Command::Noop(Noop { pause_ms: 1500 }));
    let r = c.step("played");
    assert_eq!(r.command, Command::Hangup(Hangup { cause: HangupCause::Busy, reason: "closed for lunch".into() }));
    // any outcome confirms a hangup command
    let r = c.step("error:channel already gone");
    assert!(r.done);
    assert_eq!(c.s.disposition(), Some(Disposition::Completed));
}

// ---------------------------------------------------------------------------------------
// Sub-flows
// ---------------------------------------------------------------------------------------

fn sub_v1() -> String {
    flow(
        "ask",
        json!({
            "ask": {"type": "gather", "prompt": {"tts": {"text": "Account number?"}}, "maxDigits": 6, "default": "thanks", "saveAs": "account"},
            "thanks": say("Got ${account}", "mark")
        ,   "mark": {"type": "set", "vars": {"checked": "yes"}}
        }),
    )
    .to_string()
}

fn parent() -> Value {
    flow(
        "hi",
        json!({
            "hi": say("hi", "call"),
            "call": {"type": "subflow", "flow": SUB, "next": "after"},
            "after": say("after ${account} ${checked}", "bye"),
            "bye": {"type": "hangup"}
        }),
    )
}

fn env_with_sub(published: u32, text: &str) -> Resolved {
    let mut e = env();
    e.set_flow(SUB, None, Some((published, parse_and_validate(text).unwrap())));
    e
}

#[test]
fn subflow_call_and_return_share_variables() {
    let (mut c, _) = Call::start_with(parent(), env_with_sub(4, &sub_v1()), WED_OPEN, Vars::new());
    let r = c.step("played");
    assert_eq!(gather(&r).prompts, vec![tts("Account number?")]);
    assert_eq!(c.s.frames.len(), 2);
    assert_eq!((c.s.frames[1].flow_id.as_str(), c.s.frames[1].version, c.s.frames[1].node.as_str()), (SUB, 4, "ask"));
    assert_eq!(c.s.frames[0].node, "call");
    assert_eq!(c.s.trace.last().unwrap().node.as_deref(), Some(format!("{SUB}@v4/ask").as_str()));
    let r = c.step("digits:123456");
    assert_eq!(play(&r).media, vec![tts("Got 123456")]);
    let r = c.step("played");
    assert_eq!(play(&r).media, vec![tts("after 123456 yes")], "the sub-flow's end returns to the caller's next");
    assert_eq!(c.s.frames.len(), 1);
    assert!(details(&c.s).iter().any(|d| d == &format!("calling sub-flow {SUB} v4 from node \"call\"")));
    assert!(details(&c.s).iter().any(|d| d == &format!("sub-flow {SUB} v4 ended at node \"mark\"; back in flow {FLOW} v1")));
}

#[test]
fn subflow_stays_pinned_when_a_new_version_is_published() {
    let (mut c, _) = Call::start_with(parent(), env_with_sub(4, &sub_v1()), WED_OPEN, Vars::new());
    c.step("played"); // now inside SUB v4
                      // v5 is published: the adapter's env for a later step only knows what it loads.
    let v5 = sub_v1().replace("Got ${account}", "v5 says ${account}");
    let mut e = env();
    e.set_flow(SUB, None, Some((5, parse_and_validate(&v5).unwrap())));
    c.env = e;
    c.now += 1000;
    let err = c.try_step(2, "digits:42").unwrap_err();
    assert_eq!(err, FlowError::Needs(vec![Need::Flow { flow_id: SUB.into(), version: Some(4) }]), "the pinned version is asked for, not the published one");
    c.env.set_flow(SUB, Some(4), Some((4, parse_and_validate(&sub_v1()).unwrap())));
    let r = c.try_step(2, "digits:42").unwrap().response;
    assert_eq!(play(&r).media, vec![tts("Got 42")]);
    // a "v4" whose text differs from what the call entered is refused
    let (mut c, _) = Call::start_with(parent(), env_with_sub(4, &sub_v1()), WED_OPEN, Vars::new());
    c.step("played");
    let mut e = env();
    e.set_flow(SUB, Some(4), Some((4, parse_and_validate(&v5).unwrap())));
    c.env = e;
    let r = c.step("digits:42");
    assert_eq!(hangup(&r).cause, HangupCause::Failure);
    assert_eq!(hangup(&r).reason, format!("sub-flow {SUB} v4 changed since the call entered it"));
}

#[test]
fn hangup_inside_a_subflow_ends_the_call() {
    let sub = flow("x", json!({"x": {"type": "hangup", "cause": "rejected"}})).to_string();
    let (mut c, _) = Call::start_with(parent(), env_with_sub(1, &sub), WED_OPEN, Vars::new());
    let r = c.step("played");
    assert_eq!(hangup(&r).cause, HangupCause::Rejected);
    assert!(c.step("hangup").done);
    assert_eq!(c.s.disposition(), Some(Disposition::Completed));
}

#[test]
fn subflow_missing_or_recursing_fails_the_call_cleanly() {
    let mut e = env();
    e.set_flow(SUB, None, None);
    let (mut c, _) = Call::start_with(parent(), e, WED_OPEN, Vars::new());
    let r = c.step("played");
    assert_eq!(
        r.command,
        Command::Hangup(Hangup { cause: HangupCause::Failure, reason: format!("sub-flow {SUB} not found (missing, unpublished or another account's)") })
    );
    assert!(matches!(c.s.status, Status::Ending { disposition: Disposition::Failed, .. }));
    let r = c.step("hangup");
    assert_eq!(hangup(&r).cause, HangupCause::Failure);
    assert_eq!(c.s.disposition(), Some(Disposition::Failed));
    assert!(events(&c.s).contains(&TraceEvent::Error));

    // a sub-flow that calls itself through a blocking node: the depth limit stops it
    let rec = flow(
        "p",
        json!({
            "p": {"type": "play", "tts": {"text": "level"}, "next": "again"},
            "again": {"type": "subflow", "flow": SUB2}
        }),
    )
    .to_string();
    let mut e = env();
    e.set_flow(SUB2, None, Some((1, parse_and_validate(&rec).unwrap())));
    let top = flow("go", json!({"go": {"type": "subflow", "flow": SUB2}}));
    let (mut c, r) = Call::start_with(top, e, WED_OPEN, Vars::new());
    assert_eq!(play(&r).media, vec![tts("level")]);
    let mut levels = 1;
    loop {
        let r = c.step("played");
        match &r.command {
            Command::Play(_) => levels += 1,
            Command::Hangup(h) => {
                assert_eq!(h.reason, format!("sub-flow {SUB2} not entered: calls nested deeper than 8 (recursion?)"));
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(levels, MAX_FRAMES - 1);
}

// ---------------------------------------------------------------------------------------
// Outcomes, seq, idempotency
// ---------------------------------------------------------------------------------------

#[test]
fn every_outcome_against_every_command() {
    // One flow per command type; each outcome is either applied or refused with 400.
    let flows: Vec<(&str, Value)> = vec![
        ("play", flow("n", json!({"n": say("x", "bye"), "bye": {"type": "hangup"}}))),
        ("gather", flow("n", json!({"n": {"type": "gather", "prompt": {"tts": {"text": "x"}}, "maxDigits": 4, "default": "bye"}, "bye": {"type": "hangup"}}))),
        ("dial", flow("n", json!({"n": {"type": "dial", "targets": [{"user": USR}], "next": "bye"}, "bye": {"type": "hangup"}}))),
        ("enqueue", flow("n", json!({"n": {"type": "enqueue", "queue": "q", "next": "bye"}, "bye": {"type": "hangup"}}))),
        ("record", flow("n", json!({"n": {"type": "record", "next": "bye"}, "bye": {"type": "hangup"}}))),
        ("conference", flow("n", json!({"n": {"type": "conference", "room": "r", "next": "bye"}, "bye": {"type": "hangup"}}))),
        ("noop", flow("n", json!({"n": {"type": "pause", "ms": 10, "next": "bye"}, "bye": {"type": "hangup"}}))),
        ("hangup", flow("n", json!({"n": {"type": "hangup"}}))),
    ];
    let outcomes = [
        "digit:1",
        "digits:1234",
        "no-input",
        "invalid",
        "answered",
        "no-answer",
        "busy",
        "failed",
        "RECORDED",
        "queue:answered",
        "queue:timeout",
        "queue:abandoned",
        "queue:full",
        "played",
        "hangup",
        "error:boom",
    ];
    let mut table = Vec::new();
    for (name, f) in &flows {
        let mut ok = Vec::new();
        for o in outcomes {
            let (mut c, r) = Call::start(f.clone());
            assert_eq!(r.command.name(), *name);
            let o = if o == "RECORDED" {
                match &r.command {
                    Command::Record(rec) => format!("recorded:{}", rec.key),
                    _ => "recorded:recordings/x/1.wav".to_string(),
                }
            } else {
                o.to_string()
            };
            let before = c.s.clone();
            match c.try_step(1, &o) {
                Ok(s) => {
                    assert_eq!(s.response.seq, 2);
                    let label = if o.starts_with("recorded:") {
                        "recorded"
                    } else if o.starts_with("error:") {
                        "error"
                    } else {
                        o.as_str()
                    };
                    ok.push(label.to_string());
                }
                Err(FlowError::BadOutcome(m)) => {
                    assert_eq!(ApiError::from(FlowError::BadOutcome(m.clone())).status, 400);
                    assert!(m.starts_with(&format!("outcome \"{o}\" does not answer a {name} command (expected ")), "{m}");
                    assert_eq!(c.s, before, "a refused outcome changes nothing");
                }
                Err(e) => panic!("{name} {o}: {e}"),
            }
        }
        table.push(format!("{name}: {}", ok.join(" ")));
    }
    assert_eq!(
        table,
        [
            "play: played hangup error",
            "gather: digit:1 digits:1234 no-input invalid hangup error",
            "dial: answered no-answer busy failed hangup error",
            "enqueue: queue:answered queue:timeout queue:abandoned queue:full hangup error",
            "record: no-input recorded hangup error",
            "conference: failed played hangup error",
            "noop: played hangup error",
            "hangup: digit:1 digits:1234 no-input invalid answered no-answer busy failed recorded queue:answered queue:timeout queue:abandoned queue:full played hangup error",
        ]
    );
    let (mut c, _) = Call::start(flows[2].1.clone());
    let FlowError::BadOutcome(m) = c.try_step(1, "played").unwrap_err() else { panic!() };
    assert_eq!(m, "outcome \"played\" does not answer a dial command (expected answered, no-answer, busy, failed, hangup or error:<reason>)");
}

#[test]
fn caller_hangup_closes_at_any_point() {
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played");
    c.now += 5000;
    let r = c.try_step(2, "hangup").unwrap();
    assert_eq!(r.ended, Some(Disposition::CallerHangup));
    assert!(r.response.done);
    assert_eq!(r.response.command, Command::Hangup(Hangup { cause: HangupCause::Normal, reason: "call ended: caller-hangup".into() }));
    let Status::Closed { disposition, reason, at_ms, by_seq } = &c.s.status else { panic!() };
    assert_eq!((*disposition, reason.as_str(), *at_ms, *by_seq), (Disposition::CallerHangup, "caller hung up during gather at node \"main\"", c.now, Some(2)));
    assert_eq!(c.s.deadline_ms(), None);
    assert_eq!(expire(&mut c.s, u64::MAX), None, "the alarm has nothing to do on a closed session");
}

#[test]
fn edge_errors_go_to_on_error_or_fail_the_call() {
    let f = flow(
        "a",
        json!({
            "a": {"type": "play", "media": "prompts/missing.wav", "next": "b", "on": {"error": "sorry"}},
            "b": {"type": "play", "media": "prompts/missing2.wav", "next": "bye"},
            "sorry": say("sorry", "b"),
            "bye": {"type": "hangup"}
        }),
    );
    let (mut c, _) = Call::start(f);
    let r = c.step("error:media fetch failed: 404");
    assert_eq!(play(&r).media, vec![tts("sorry")]);
    c.step("played");
    let r = c.step("error:media fetch failed: 404");
    assert_eq!(
        r.command,
        Command::Hangup(Hangup { cause: HangupCause::Failure, reason: "the edge could not run the play node \"b\": media fetch failed: 404".into() })
    );
    let r = c.step("hangup");
    assert_eq!(r.command, Command::Hangup(Hangup { cause: HangupCause::Failure, reason: "call ended: failed".into() }));
    assert_eq!(c.s.disposition(), Some(Disposition::Failed));
}

#[test]
fn retried_step_returns_the_same_command() {
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played");
    let first = c.try_step(2, "digit:2").unwrap();
    assert!(!first.replayed);
    let after = c.s.clone();
    c.now += 30_000;
    for _ in 0..3 {
        let again = c.try_step(2, "digit:2").unwrap();
        assert!(again.replayed);
        assert_eq!(again.response, first.response);
        assert_eq!(again.ended, None);
    }
    // nothing moved but the trace
    assert_eq!(c.s.seq, after.seq);
    assert_eq!(c.s.steps, after.steps);
    assert_eq!(c.s.last_response, after.last_response);
    let replays: Vec<&TraceEntry> = c.s.trace.iter().filter(|t| t.event == TraceEvent::Replay).collect();
    assert_eq!(replays.len(), 3);
    assert_eq!(replays[0].detail, "step seq 2 retried: answered with the stored response seq 3");
    // the step after proceeds normally
    let r = c.step("no-answer");
    assert_eq!(r.seq, 4);
}

#[test]
fn seq_conflicts() {
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played"); // applied 1, pending 2
    c.step("digit:2"); // applied 2, pending 3
    let before = c.s.clone();
    let stale = c.try_step(1, "played").unwrap_err();
    assert_eq!(stale, FlowError::StaleSeq { seq: 1, current: 3 });
    let api = ApiError::from(stale);
    assert_eq!((api.status, api.message.as_str()), (409, "stale seq 1: the pending command is seq 3 (only 3 or a retry of 2 is accepted)"));
    let ahead = c.try_step(5, "answered").unwrap_err();
    assert_eq!(ahead, FlowError::SeqAhead { seq: 5, current: 3 });
    assert_eq!(c.try_step(4, "answered").unwrap_err(), FlowError::SeqAhead { seq: 4, current: 3 }, "one ahead is ahead too");
    assert_eq!(ApiError::from(ahead).status, 409);
    let mismatch = c.try_step(2, "digit:1").unwrap_err();
    assert_eq!(mismatch, FlowError::OutcomeMismatch { seq: 2, applied: "digit:2".into(), got: "digit:1".into() });
    assert_eq!(ApiError::from(mismatch).message, "seq 2 was already applied with outcome \"digit:2\"; a retry must repeat it (got \"digit:1\")");
    let zero = c.try_step(0, "answered").unwrap_err();
    assert_eq!(ApiError::from(zero).status, 400);
    let big = StepData { detail: Some("x".repeat(5000)), ..Default::default() };
    let e = step(&mut c.s, &c.def, 3, &Outcome::Answered, Some(&big), c.now, &c.env).unwrap_err();
    assert!(matches!(&e, FlowError::BadRequest(m) if m.contains("at most 4096")), "{e:?}");
    assert_eq!(c.s.trace.len(), before.trace.len(), "refused steps leave no trace");
    assert_eq!(c.s, before);
}

#[test]
fn steps_after_the_end() {
    let (mut c, _) = Call::start(flow("h", json!({"h": {"type": "hangup"}})));
    let fin = c.try_step(1, "hangup").unwrap();
    assert!(fin.response.done);
    assert_eq!(fin.ended, Some(Disposition::Completed));
    // retrying the closing step replays the final response, without "ended" again
    let again = c.try_step(1, "hangup").unwrap();
    assert!(again.replayed);
    assert_eq!((again.response.clone(), again.ended), (fin.response.clone(), None));
    assert_eq!(c.try_step(1, "played").unwrap_err(), FlowError::OutcomeMismatch { seq: 1, applied: "hangup".into(), got: "played".into() });
    let ended = c.try_step(2, "hangup").unwrap_err();
    assert_eq!(ended, FlowError::Ended { seq: 2, disposition: Disposition::Completed });
    assert_eq!(ApiError::from(ended).message, "the call's flow has ended (completed); seq 2 not applied");
}

#[test]
fn session_survives_serialization_between_steps() {
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played");
    let stored = serde_json::to_string(&c.s).unwrap();
    let loaded: Session = serde_json::from_str(&stored).unwrap();
    assert_eq!(loaded, c.s);
    c.s = loaded;
    let r = c.step("digit:3");
    assert!(matches!(r.command, Command::Record(_)));
    // the stored shape, as the Durable Object keeps it
    let v = serde_json::to_value(&c.s).unwrap();
    assert_eq!(v["status"], json!({"state": "running"}));
    assert_eq!(v["flowId"], FLOW);
    assert_eq!(v["frames"][0]["node"], "voicemail");
    assert_eq!(v["lastApplied"], json!({"seq": 2, "outcome": "digit:3"}));
    let key = match &c.s.last_response.command {
        Command::Record(r) => r.key.clone(),
        other => panic!("{other:?}"),
    };
    c.step(&format!("recorded:{key}"));
    c.step("played");
    c.step("hangup");
    let v = serde_json::to_value(&c.s).unwrap();
    assert_eq!(v["status"]["state"], "closed");
    assert_eq!(v["status"]["disposition"], "completed");
    assert_eq!(v["status"]["bySeq"], 5);
}

#[test]
fn version_pinning_refuses_another_versions_text() {
    let v1 = demo_ivr().to_string();
    let v2 = v1.replace("Thank you for calling Acme.", "Welcome to the new Acme.");
    let d1 = parse(&v1).unwrap();
    let d2 = parse(&v2).unwrap();
    let e = env();
    let (mut s, _) = start(&req(Vars::new()), 7, &d1, WED_OPEN, &e).unwrap();
    assert_eq!(s.frames[0].digest, d1.digest);
    let before = s.clone();
    let err = step(&mut s, &d2, 1, &Outcome::Played, None, WED_OPEN + 1000, &e).unwrap_err();
    assert_eq!(err, FlowError::PinMismatch { flow_id: FLOW.into(), version: 7 });
    let api = ApiError::from(err);
    assert_eq!(api.status, 500);
    assert_eq!(s, before);
    // the pinned text (re-parsed, as the adapter does per step) is accepted
    let again = parse(&v1).unwrap();
    step(&mut s, &again, 1, &Outcome::Played, None, WED_OPEN + 1000, &e).unwrap();
    // a call started on v2 sees v2; the v1 call is unaffected
    let (s2, r2) = start(&req(Vars::new()), 8, &d2, WED_OPEN, &e).unwrap();
    assert_eq!(play(&r2).media, vec![tts("Welcome to the new Acme.")]);
    assert_eq!(s2.pinned(), (FLOW, 8));
    assert_eq!(s.pinned(), (FLOW, 7));
}

// ---------------------------------------------------------------------------------------
// Guards, deadlines, trace
// ---------------------------------------------------------------------------------------

#[test]
fn runaway_loop_is_stopped_with_a_clear_reason() {
    // a cycle with an exit the validator accepts, but whose condition never changes
    let f = flow(
        "s",
        json!({
            "s": {"type": "set", "vars": {"n": "1"}, "next": "b"},
            "b": {"type": "branch", "cases": [{"when": {"var": "n", "equals": "1"}, "next": "s"}], "default": "bye"},
            "bye": {"type": "hangup"}
        }),
    );
    let (mut c, r) = Call::start(f);
    assert_eq!(
        r.command,
        Command::Hangup(Hangup {
            cause: HangupCause::Failure,
            reason: "runaway flow: more than 100 nodes ran without waiting for the caller (reached \"s\"); look for a loop of set / branch / goto nodes".into()
        })
    );
    assert!(matches!(c.s.status, Status::Ending { disposition: Disposition::Failed, .. }));
    assert_eq!(c.s.trace.iter().filter(|t| t.event == TraceEvent::Error).count(), 1);
    assert!(c.s.trace.len() <= MAX_TRACE);
    let r = c.step("hangup");
    assert!(r.done);
    assert_eq!(c.s.disposition(), Some(Disposition::Failed));
}

#[test]
fn runaway_budget_boundary() {
    let chain = |n: usize| {
        let mut nodes = serde_json::Map::new();
        for i in 0..n {
            let next = if i + 1 == n { "end".to_string() } else { format!("n{}", i + 1) };
            nodes.insert(format!("n{i}"), json!({"type": "noop", "next": next}));
        }
        nodes.insert("end".into(), say("made it", "end2"));
        nodes.insert("end2".into(), json!({"type": "hangup"}));
        flow("n0", Value::Object(nodes))
    };
    // 99 noops + the play = 100 nodes in one step: allowed
    let (_, r) = Call::start(chain(99));
    assert_eq!(play(&r).media, vec![tts("made it")]);
    // 100 noops + the play = 101: stopped
    let (_, r) = Call::start(chain(100));
    assert_eq!(hangup(&r).cause, HangupCause::Failure);
    // the budget is per step: a later step gets a fresh one
    let mut nodes = serde_json::Map::new();
    nodes.insert("first".into(), say("first", "n0"));
    for i in 0..99 {
        nodes.insert(format!("n{i}"), json!({"type": "noop", "next": if i == 98 { "end".to_string() } else { format!("n{}", i + 1) }}));
    }
    nodes.insert("end".into(), say("made it", "bye"));
    nodes.insert("bye".into(), json!({"type": "hangup"}));
    let (mut c, _) = Call::start(flow("first", Value::Object(nodes)));
    assert_eq!(play(&c.step("played")).media, vec![tts("made it")]);
}

#[test]
fn deadlines_follow_the_pending_command() {
    let t0 = WED_OPEN;
    // play: one prompt budget + grace
    let (mut c, _) = Call::start(demo_ivr());
    assert_eq!(c.s.deadline_ms(), Some(t0 + PROMPT_BUDGET_MS + EDGE_GRACE_MS));
    // gather: prompt + first-digit timeout + maxDigits × inter-digit
    c.step("played");
    assert_eq!(c.s.deadline_ms(), Some(c.now + PROMPT_BUDGET_MS + 5000 + 2000 + EDGE_GRACE_MS));
    // a retry re-arms from the retry's issue time, with two prompts now
    c.step("no-input");
    assert_eq!(c.s.deadline_ms(), Some(c.now + 2 * PROMPT_BUDGET_MS + 5000 + 2000 + EDGE_GRACE_MS));
    // record: prompt + maxSecs + upload slack
    c.step("digit:3");
    assert_eq!(c.s.deadline_ms(), Some(c.now + PROMPT_BUDGET_MS + 120_000 + 10_000 + EDGE_GRACE_MS));
    // dial / queue: a bridged call may last: capped by the maximum call length
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played");
    c.step("digit:1");
    assert_eq!(c.s.deadline_ms(), Some(t0 + MAX_CALL_MS));
    // noop: its pause; hangup pending: grace only
    let (mut c, _) = Call::start(flow("p", json!({"p": {"type": "pause", "ms": 1500, "next": "h"}, "h": {"type": "hangup"}})));
    assert_eq!(c.s.deadline_ms(), Some(t0 + 1500 + EDGE_GRACE_MS));
    c.step("played");
    assert_eq!(c.s.deadline_ms(), Some(c.now + EDGE_GRACE_MS));
}

#[test]
fn alarm_closes_a_call_whose_edge_stopped_stepping() {
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played");
    let deadline = c.s.deadline_ms().unwrap();
    assert_eq!(expire(&mut c.s, deadline - 1), None, "not yet");
    assert_eq!(c.s.status, Status::Running);
    assert_eq!(expire(&mut c.s, deadline), Some(Disposition::TimedOut));
    let Status::Closed { disposition, reason, at_ms, by_seq } = &c.s.status else { panic!() };
    assert_eq!((*disposition, *at_ms, *by_seq), (Disposition::TimedOut, deadline, None));
    assert_eq!(reason, &format!("no step from the edge for {} s after command seq 2 (gather)", (deadline - c.now) / 1000));
    assert_eq!(c.s.trace.last().unwrap().event, TraceEvent::End);
    assert_eq!(expire(&mut c.s, deadline + 1), None, "only once");
    // a late step gets 409
    c.now = deadline + 5;
    let e = c.try_step(2, "digit:1").unwrap_err();
    assert_eq!(e, FlowError::Ended { seq: 2, disposition: Disposition::TimedOut });
    assert_eq!(ApiError::from(e).status, 409);
    // a retry of the last applied step is not replayed once the alarm closed the call
    assert_eq!(c.try_step(1, "played").unwrap_err(), FlowError::Ended { seq: 1, disposition: Disposition::TimedOut });

    // a hangup the edge never confirmed keeps the flow's disposition
    let (mut c, _) = Call::start(flow("h", json!({"h": {"type": "hangup"}})));
    let d = c.s.deadline_ms().unwrap();
    assert_eq!(expire(&mut c.s, d), Some(Disposition::Completed));
    let Status::Closed { reason, .. } = &c.s.status else { panic!() };
    assert_eq!(reason, "hangup node \"h\" (the edge never confirmed the hangup)");

    // the maximum call length wins over a long-running command
    let (mut c, _) = Call::start(demo_ivr());
    c.step("played");
    c.step("digit:1");
    assert_eq!(expire(&mut c.s, WED_OPEN + MAX_CALL_MS), Some(Disposition::TimedOut));
    let Status::Closed { reason, .. } = &c.s.status else { panic!() };
    assert_eq!(reason, "maximum flow duration of 240 min reached");
}

#[test]
fn trace_reads_as_a_timeline_with_latencies() {
    let (mut c, _) = Call::start(demo_ivr());
    c.now += 3000;
    let seq = c.s.seq;
    c.try_step(seq, "played").unwrap();
    c.now += 4200;
    let data = StepData { detail: Some("pressed quickly".into()), ..Default::default() };
    step(&mut c.s, &c.def, 2, &out("digit:2"), Some(&data), c.now, &c.env).unwrap();
    c.now += 61_000;
    let data = StepData { duration_ms: Some(55_000), answered_by: Some("sip:1002@acme.sip.io".into()), ..Default::default() };
    step(&mut c.s, &c.def, 3, &Outcome::Answered, Some(&data), c.now, &c.env).unwrap();
    c.step("hangup");
    let lines: Vec<String> =
        c.s.trace
            .iter()
            .map(|t| {
                format!(
                    "+{} {:?} {} {} {}{}",
                    t.at_ms - WED_OPEN,
                    t.event,
                    t.seq.map(|s| s.to_string()).unwrap_or_default(),
                    t.node.clone().unwrap_or_default(),
                    t.detail,
                    t.latency_ms.map(|l| format!(" ({l} ms)")).unwrap_or_default()
                )
            })
            .collect();
    assert_eq!(
        lines,
        [
            format!("+0 Start  welcome flow {FLOW} v1 started for call \"{CALL}\" (vars: none)"),
            "+0 Command 1 welcome play tts \"Thank you for calling Acme.\"".to_string(),
            "+3000 Outcome 1 welcome played (3000 ms)".to_string(),
            format!("+3000 Node  hours branch: case 0 matched → \"main\" [calendar {CAL}: open (weekly wed 09:00-17:00, local 2026-11-18T10:00:03-05:00)]"),
            "+3000 Command 2 main gather 1-1 digits (attempt 1/3), prompts: tts \"For sales press 1. For Bob press 2. To leave a message press\"…".to_string(),
            "+7200 Outcome 2 main digit:2 (4200 ms)".to_string(),
            "+7200 Node  main input \"2\" → \"bob\"".to_string(),
            format!("+7200 Command 3 bob dial simultaneous 20s: user {USR} → sip:1002@acme.sip.io"),
            "+68200 Outcome 3 bob answered (61000 ms)".to_string(),
            "+68200 Command 4 bye hangup normal: hangup node \"bye\"".to_string(),
            "+69200 Outcome 4 bye hangup (1000 ms)".to_string(),
            "+69200 End  bye call ended: completed: hangup node \"bye\"".to_string(),
        ]
    );
    assert_eq!(c.s.trace[8].data.as_ref().and_then(|d| d.duration_ms), Some(55_000));
    // the trace entry shape for /calls/{id}/trace
    assert_eq!(
        serde_json::to_value(&c.s.trace[5]).unwrap(),
        json!({"atMs": WED_OPEN + 7200, "event": "outcome", "seq": 2, "node": "main", "detail": "digit:2", "latencyMs": 4200, "data": {"detail": "pressed quickly"}})
    );
}

#[test]
fn trace_is_bounded_keeping_the_beginning_and_the_latest() {
    let (mut c, _) = Call::start(flow(
        "g",
        json!({
            "g": {"type": "gather", "prompt": {"tts": {"text": "x"}}, "branches": {"1": "g"}, "fallback": "g"}
        }),
    ));
    for _ in 0..400 {
        c.step("digit:1");
    }
    assert_eq!(c.s.trace.len(), MAX_TRACE);
    assert!(c.s.trace_dropped > 0);
    assert_eq!(c.s.trace.len() as u64 + c.s.trace_dropped, 1 + 1 + 400 * 3, "start, first command, then outcome + note + command per step");
    assert_eq!(c.s.trace[0].event, TraceEvent::Start);
    assert_eq!(c.s.trace.last().unwrap().seq, Some(401));
    // long details are clipped
    let vars: Vars = (0..10).map(|i| (format!("v{i}"), "y".repeat(500))).collect();
    let (c, _) = Call::start_with(flow("p", json!({"p": say("x", "bye"), "bye": {"type": "hangup"}})), env(), WED_OPEN, vars);
    assert_eq!(c.s.trace[0].detail.chars().count(), MAX_DETAIL_CHARS + 1);
    assert!(c.s.trace[0].detail.ends_with('…'));
}

// ---------------------------------------------------------------------------------------
// Start-side checks
// ---------------------------------------------------------------------------------------

#[test]
fn start_authorization_and_replay() {
    let r = req(Vars::new());
    assert_eq!(authorize_start(&r, Some(ACC), Some(3)), Ok(3));
    let e = authorize_start(&r, Some("acc_01jf18ah3jeb5w6dfp27sgjsbv"), Some(3)).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (403, format!("account {ACC} does not own flow {FLOW}").as_str()));
    assert_eq!(authorize_start(&r, None, None).unwrap_err().status, 404);
    let e = authorize_start(&r, Some(ACC), None).unwrap_err();
    assert_eq!((e.status, e.message.as_str()), (409, format!("flow {FLOW} has no published version").as_str()));
    assert_eq!(unknown_call(CALL), ApiError::not_found(format!("no flow session for call \"{CALL}\"")));

    let (mut c, first) = Call::start(demo_ivr());
    assert_eq!(c.s.replay_start(&r), Ok(first));
    let other = FlowStart { flow_id: SUB.into(), ..r.clone() };
    let e = c.s.replay_start(&other).unwrap_err();
    assert_eq!(ApiError::from(e).status, 409);
    c.step("played");
    assert_eq!(c.s.replay_start(&r), Err(FlowError::AlreadyStarted { detail: "it is at seq 2".into() }));
    // a bad start request is a 400
    let bad = FlowStart { account_id: "nope".into(), ..r };
    let e = start(&bad, 1, &def(demo_ivr()), WED_OPEN, &env()).unwrap_err();
    assert_eq!(e, FlowError::BadRequest("accountId: expected an acc_ id".into()));
}

#[test]
fn a_definition_that_skipped_validation_fails_cleanly_at_run_time() {
    // start names a node that does not exist (stored without validation)
    let d = parse(&flow("nope", json!({"a": {"type": "hangup"}})).to_string()).unwrap();
    let (s, r) = start(&req(Vars::new()), 1, &d, WED_OPEN, &env()).unwrap();
    assert_eq!(r.command, Command::Hangup(Hangup { cause: HangupCause::Failure, reason: format!("node \"nope\" does not exist in flow {FLOW} v1") }));
    assert!(matches!(s.status, Status::Ending { disposition: Disposition::Failed, .. }));
    // a gather without a prompt
    let d = parse(&flow("g", json!({"g": {"type": "gather", "default": "g"}})).to_string()).unwrap();
    let (_, r) = start(&req(Vars::new()), 1, &d, WED_OPEN, &env()).unwrap();
    assert_eq!(hangup(&r).reason, "node \"g\" has no prompt");
}

#[test]
fn too_many_variables_fail_the_call() {
    let mut vars = Vars::new();
    for i in 0..wire::MAX_VARS {
        vars.insert(format!("v{i}"), "x".into());
    }
    let (_, r) = Call::start_with(
        flow("s", json!({"s": {"type": "set", "vars": {"one_more": "x"}, "next": "p"}, "p": say("p", "bye"), "bye": {"type": "hangup"}})),
        env(),
        WED_OPEN,
        vars.clone(),
    );
    assert_eq!(hangup(&r).reason, "too many variables (at most 64) setting \"one_more\"");
    // overwriting an existing one is fine
    let (_, r) = Call::start_with(
        flow("s", json!({"s": {"type": "set", "vars": {"v1": "y"}, "next": "p"}, "p": say("p", "bye"), "bye": {"type": "hangup"}})),
        env(),
        WED_OPEN,
        vars,
    );
    assert_eq!(play(&r).media, vec![tts("p")]);
}

#[test]
fn queue_result_kinds_match_enqueue_on_keys() {
    // the names an enqueue node's `on` map uses are the outcome kinds
    for (q, k) in [(QueueResult::Answered, "answered"), (QueueResult::Timeout, "timeout"), (QueueResult::Abandoned, "abandoned"), (QueueResult::Full, "full")] {
        assert_eq!(Outcome::Queue(q).kind(), k);
        assert!(Node::Enqueue(serde_json::from_value(json!({"queue": "q"})).unwrap()).on_keys().contains(&k));
    }
}

#[test]
fn steps_hand_their_new_trace_entries_to_the_call_timeline() {
    let d = def(demo_ivr());
    let e = env();
    let (mut s, _) = start(&req(Vars::from([("caller".into(), "+15550001111".into())])), 2, &d, WED_OPEN, &e).unwrap();
    let mut collected = s.trace.clone();
    let mut now = WED_OPEN;
    for (seq, o) in [(1, "played"), (2, "digit:2"), (2, "digit:2"), (3, "busy")] {
        now += 1500;
        let r = step(&mut s, &d, seq, &out(o), None, now, &e).unwrap();
        assert!(!r.trace.is_empty());
        collected.extend(r.trace);
    }
    let key = match &s.last_response.command {
        Command::Record(r) => r.key.clone(),
        other => panic!("{other:?}"),
    };
    for (seq, o) in [(4, format!("recorded:{key}")), (5, "played".into()), (6, "hangup".into())] {
        now += 1500;
        collected.extend(step(&mut s, &d, seq, &out(&o), None, now, &e).unwrap().trace);
    }
    assert_eq!(collected, s.trace, "the per-step entries are exactly what the session recorded");
    assert_eq!(collected.iter().filter(|t| t.event == TraceEvent::Replay).count(), 1);

    // into the call's timeline (crate::trace)
    let mut timeline = crate::trace::Trace::new(CALL);
    for t in &collected {
        timeline.push(t.to_entry());
    }
    let kinds: Vec<&str> = timeline.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds[..4], ["flow.start", "flow.command", "flow.outcome", "flow.node"]);
    assert!(kinds.contains(&"flow.replay"));
    assert_eq!(timeline.disposition.as_deref(), Some("completed: hangup node \"bye\""));
    let outcome = &timeline.entries[2];
    assert_eq!(outcome.summary, "#1 welcome: played");
    assert_eq!(outcome.latency_ms, Some(1500));
    assert_eq!(outcome.detail, json!({"seq": 1, "node": "welcome"}));
    assert_eq!(timeline.entries[0].summary, format!("welcome: flow {FLOW} v2 started for call \"{CALL}\" (vars: caller=\"+15550001111\")"));
    let text = timeline.render_text();
    assert!(text.contains("flow.command  #3 bob: dial simultaneous 20s"), "{text}");
    assert!(text.ends_with("disposition: completed: hangup node \"bye\"\n"), "{text}");
}

// ---------------------------------------------------------------------------------------
// docs/flows.md is checked against the code
// ---------------------------------------------------------------------------------------

const DOCS: &str = include_str!("../../../docs/flows.md");

/// Bodies of the fenced code blocks of `lang` in docs/flows.md.
fn doc_blocks(lang: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur: Option<String> = None;
    for line in DOCS.lines() {
        match &mut cur {
            Some(body) if line.trim_start().starts_with("```") => {
                out.push(std::mem::take(body));
                cur = None;
            }
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None if line.trim() == format!("```{lang}") => cur = Some(String::new()),
            None => {}
        }
    }
    out
}

#[test]
fn docs_examples_are_valid() {
    let mut definitions = 0;
    let mut conditions = 0;
    let mut requests = 0;
    for block in doc_blocks("json") {
        if let Ok(v) = serde_json::from_str::<Value>(&block) {
            if v.get("nodes").is_some() {
                assert_eq!(v, demo_ivr(), "the documented demo IVR is the one the tests run");
                def(v);
                definitions += 1;
            } else if v.is_array() {
                // the validation example: exactly what the validator says about this flow
                let f = json!({"version": 1, "start": "menu", "nodes": {
                    "menu": {"type": "menu", "options": {"1": "sales", "2": "nowhere"}},
                    "sales": {"type": "enqueue", "queue": "sales", "next": "bye"},
                    "bye": {"type": "hangup"},
                    "lost": {"type": "hangup"}
                }});
                let errs = parse_and_validate(&f.to_string()).unwrap_err();
                assert_eq!(v, serde_json::to_value(&errs).unwrap());
            } else {
                wire::FlowRequest::from_value(v).unwrap_or_else(|e| panic!("{block}: {e}"));
                requests += 1;
            }
            continue;
        }
        for line in block.lines().filter(|l| !l.trim().is_empty()) {
            let Ok(v) = serde_json::from_str::<Value>(line) else { continue };
            if v.get("callId").is_some() {
                wire::FlowRequest::from_value(v).unwrap_or_else(|e| panic!("{line}: {e}"));
                requests += 1;
            } else {
                serde_json::from_value::<definition::Condition>(v).unwrap_or_else(|e| panic!("{line}: {e}"));
                conditions += 1;
            }
        }
    }
    assert_eq!((definitions, conditions, requests), (1, 10, 3));
    // the one-node demo quoted in the text
    let quoted = DOCS.split('`').find(|s| s.starts_with(r#"{"version":1,"start":"welcome""#)).unwrap();
    parse_and_validate(quoted).unwrap();
}

#[test]
fn docs_walkthrough_is_what_the_interpreter_does() {
    let texts = doc_blocks("text");
    let transcript = texts.iter().find(|b| b.starts_with("→ ")).expect("walkthrough block");
    let d = def(demo_ivr());
    let e = env();
    let mut now = WED_OPEN;
    let mut session: Option<Session> = None;
    let mut last: Option<CommandResponse> = None;
    let mut exchanges = 0;
    for line in transcript.lines() {
        if let Some(body) = line.strip_prefix("→ ") {
            let response = match wire::FlowRequest::from_value(serde_json::from_str(body).unwrap()).unwrap() {
                wire::FlowRequest::Start(s) => {
                    let (sess, r) = start(&s, 1, &d, now, &e).unwrap();
                    session = Some(sess);
                    r
                }
                wire::FlowRequest::Step(st) => {
                    now += 4000;
                    step(session.as_mut().unwrap(), &d, st.seq, &st.outcome, st.data.as_ref(), now, &e).unwrap().response
                }
            };
            last = Some(response);
        } else if let Some(body) = line.strip_prefix("← ") {
            assert_eq!(serde_json::to_string(&last.take().expect("a request before each response")).unwrap(), body);
            exchanges += 1;
        }
    }
    assert_eq!(exchanges, 8);
    // the documented trace is that call's timeline, line by line
    let mut timeline = crate::trace::Trace::new(CALL);
    for t in &session.unwrap().trace {
        timeline.push(t.to_entry());
    }
    let rendered = timeline.render_text();
    let documented = texts.iter().find(|b| b.contains("flow.start")).expect("trace block");
    let rendered_lines: Vec<&str> = rendered.lines().filter(|l| l.starts_with('+')).collect();
    assert_eq!(rendered_lines, documented.lines().collect::<Vec<_>>());
}

#[test]
fn resolved_env_answers_exactly_what_was_loaded() {
    let v4 = parse_and_validate(&sub_v1()).unwrap();
    let v5 = parse_and_validate(&sub_v1().replace("Got", "v5")).unwrap();
    let mut e = Resolved::new("https://cp.example.com/media/acc_1/");
    assert_eq!(e.flow(SUB, None), Lookup::Unloaded);
    e.set_flow(SUB, None, Some((5, v5.clone())));
    e.set_flow(SUB, Some(4), Some((4, v4.clone())));
    assert_eq!(e.flow(SUB, None), Lookup::Found((5, &v5)), "a pinned lookup never shadows the published one");
    assert_eq!(e.flow(SUB, Some(5)), Lookup::Found((5, &v5)), "the published version also answers for its number");
    assert_eq!(e.flow(SUB, Some(4)), Lookup::Found((4, &v4)));
    assert_eq!(e.flow(SUB, Some(3)), Lookup::Unloaded);
    e.set_flow(SUB2, None, None);
    assert_eq!(e.flow(SUB2, None), Lookup::Missing);
    assert_eq!(e.calendar(CAL), Lookup::Unloaded);
    e.set_calendar(CAL, None);
    assert_eq!(e.calendar(CAL), Lookup::Missing);
    e.set_calendar(CAL, Some(office()));
    assert_eq!(e.calendar(CAL), Lookup::Found(&office()));
    assert_eq!(e.dial(&Endpoint::Sip("sip:a@b".into())), Lookup::Found(vec!["sip:a@b".to_string()]), "a SIP URI resolves to itself");
    e.set_endpoint(Endpoint::Sip("sip:a@b".into()), Some(vec!["sip:a@b;transport=tls".into()]));
    assert_eq!(e.dial(&Endpoint::Sip("sip:a@b".into())), Lookup::Found(vec!["sip:a@b;transport=tls".to_string()]));
    assert_eq!(e.dial(&Endpoint::Device(DEV.into())), Lookup::Unloaded);
    assert_eq!(e.media_url("prompts/x.wav", false), "https://cp.example.com/media/acc_1/prompts/x.wav");
}
