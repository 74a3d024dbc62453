use super::*;
use serde_json::json;

const USR: &str = "usr_01jf18ah3jeb5w6dfp27sgjsbt";
const DEV: &str = "dev_01jf18ah3jeb5w6dfp27sgjsbt";
const CAL: &str = "cal_01jf18ah3jeb5w6dfp27sgjsbt";
const SUB: &str = "flow_01jf18ah3jeb5w6dfp27sgjsbv";

/// What cli/src/demo.rs stores today.
const DEMO: &str =
    r#"{"version":1,"start":"welcome","nodes":{"welcome":{"type":"play","tts":{"text":"Welcome to Acme"},"next":"bye"},"bye":{"type":"hangup"}}}"#;

fn errors_of(v: Value) -> Vec<ValidationError> {
    match parse_and_validate(&v.to_string()) {
        Ok(_) => Vec::new(),
        Err(e) => e,
    }
}

/// (node, kind, message) of every error.
fn triples(v: Value) -> Vec<(Option<String>, ErrorKind, String)> {
    errors_of(v).into_iter().map(|e| (e.node, e.kind, e.message)).collect()
}

/// A flow with `node` as the only node besides a final hangup "bye".
fn with_node(node: Value) -> Value {
    json!({"version": 1, "start": "n", "nodes": {"n": node, "bye": {"type": "hangup"}}})
}

#[track_caller]
fn only_error(v: Value, node: &str, kind: ErrorKind, message: &str) {
    let got = triples(v);
    assert_eq!(got, vec![(Some(node.to_string()), kind, message.to_string())]);
}

#[track_caller]
fn has_error(v: Value, node: Option<&str>, kind: ErrorKind, message: &str) {
    let got = triples(v);
    assert!(got.iter().any(|(n, k, m)| n.as_deref() == node && *k == kind && m == message), "expected ({node:?}, {kind:?}, {message:?}) in {got:#?}");
}

#[test]
fn the_demo_definition_is_valid_as_stored() {
    let def = parse_and_validate(DEMO).unwrap();
    assert_eq!(def.version, 1);
    assert_eq!(def.start, "welcome");
    let Node::Play(p) = &def.nodes["welcome"] else { panic!() };
    assert_eq!(p.tts.as_ref().unwrap().text, "Welcome to Acme");
    assert_eq!(p.loops, 1);
    assert_eq!(p.next.as_deref(), Some("bye"));
    assert_eq!(def.nodes["bye"], Node::Hangup(HangupNode { cause: HangupCause::Normal, reason: None }));
    // the digest is the SHA-256 of the exact text
    assert_eq!(def.digest.as_deref(), Some(sha256_hex(DEMO.as_bytes()).as_str()));
    assert_eq!(def.digest.as_ref().unwrap().len(), 64);
    assert_ne!(parse(&DEMO.replace("Acme", "Acme Inc")).unwrap().digest, def.digest);
    // serializing gives back an equivalent definition (defaults made explicit)
    let again = from_value(serde_json::to_value(&def).unwrap()).unwrap();
    assert_eq!(again.nodes, def.nodes);
}

#[test]
fn the_module_doc_example_is_valid() {
    let text = r#"{"version":1,"start":"welcome","nodes":{
      "welcome":{"type":"play","tts":{"text":"Welcome to Acme"},"next":"hours"},
      "hours":{"type":"branch","cases":[{"when":{"calendar":"cal_01jf18ah3jeb5w6dfp27sgjsbt","is":"open"},"next":"menu"}],"default":"closed"},
      "menu":{"type":"menu","prompt":{"media":"prompts/main-menu.wav"},"options":{"1":"sales","2":"bob","3":"vm"},"fallback":"vm"},
      "sales":{"type":"enqueue","queue":"sales","on":{"timeout":"vm","full":"vm"}},
      "bob":{"type":"dial","targets":[{"user":"usr_01jf18ah3jeb5w6dfp27sgjsbt"}],"timeoutSecs":20,"on":{"answered":"bye"},"next":"vm"},
      "closed":{"type":"play","tts":{"text":"We are closed."},"next":"vm"},
      "vm":{"type":"record","prompt":{"tts":{"text":"Leave a message after the tone."}},"next":"bye"},
      "bye":{"type":"hangup"}}}"#;
    let def = parse_and_validate(text).unwrap();
    assert_eq!(def.nodes.len(), 8);
}

/// One flow using every node type and every optional field; it must validate and survive
/// a serialize → parse round trip unchanged.
fn every_node_type() -> Value {
    json!({"version": 1, "start": "hello", "nodes": {
        "hello": {"type": "play", "url": "https://cdn.example.com/hello.mp3", "loops": 2, "next": "init", "on": {"error": "init"}},
        "init": {"type": "set", "vars": {"lang": "en", "greeting": "Hi ${caller}", "old": null}, "next": "route"},
        "route": {"type": "branch", "cases": [
            {"when": {"calendar": CAL, "is": "holiday"}, "next": "closed"},
            {"when": {"calendar": CAL, "is": ["closed"]}, "next": "closed"},
            {"when": {"all": [{"var": "caller", "prefix": "+44"}, {"not": {"var": "vip", "exists": true}}]}, "next": "uk"},
            {"when": {"any": [{"var": "lang", "in": ["fr", "de"]}, {"var": "caller", "equals": "+15550001111"}, {"var": "x", "notEquals": "y"}, {"var": "digits", "pattern": "1XX"}]}, "next": "main"}
        ], "default": "main"},
        "uk": {"type": "goto", "target": "main"},
        "closed": {"type": "voicemail", "prompt": {"media": "prompts/closed.wav"}, "beep": false, "maxSecs": 60, "silenceSecs": 0, "finishKey": null, "mailbox": "sales", "saveAs": "vm_key", "on": {"recorded": "thanks", "no-input": "bye", "error": "bye"}, "next": "bye"},
        "thanks": {"type": "play", "tts": {"text": "Thanks", "voice": "en-US-Standard-C", "language": "en-US"}, "next": "bye"},
        "main": {"type": "gather", "prompt": {"tts": {"text": "Enter an extension or 0"}}, "minDigits": 1, "maxDigits": 3, "finishKey": "#",
                 "firstDigitTimeoutMs": 4000, "interDigitTimeoutMs": 2000, "retries": 3,
                 "invalidPrompt": {"media": "prompts/invalid.wav"}, "noInputPrompt": {"media": "prompts/noinput.wav"},
                 "branches": {"0": "menu"}, "patterns": [{"pattern": "1XX", "next": "ext"}], "default": "conf", "fallback": "bye", "saveAs": "ext", "on": {"error": "bye"}},
        "menu": {"type": "menu", "prompt": {"tts": {"text": "1 sales, 2 support"}}, "options": {"1": "sales", "2": "support"}, "retries": 1,
                 "invalidPrompt": {"tts": {"text": "Sorry"}}, "noInputPrompt": {"tts": {"text": "Hello?"}}, "fallback": "bye", "timeoutMs": 6000, "interDigitTimeoutMs": 1000},
        "ext": {"type": "dial", "targets": [{"user": USR}, {"device": DEV}, {"number": "+15557654321"}, {"sip": "sip:bob@example.com"}],
                "strategy": "sequential", "timeoutSecs": 20, "callerId": {"number": "+15551230100", "name": "Acme"}, "on": {"answered": "bye", "busy": "closed", "no-answer": "closed", "failed": "closed", "error": "closed"}, "next": "closed"},
        "sales": {"type": "enqueue", "queue": "sales", "holdMusic": {"media": "moh/jazz.wav"}, "maxWaitSecs": 300,
                  "announce": {"everySecs": 30, "position": true, "prompt": {"tts": {"text": "Still there"}}},
                  "on": {"answered": "bye", "timeout": "closed", "abandoned": "bye", "full": "closed", "error": "closed"}, "next": "bye"},
        "support": {"type": "subflow", "flow": SUB, "next": "wait"},
        "wait": {"type": "pause", "ms": 1500, "next": "join", "on": {"error": "bye"}},
        "join": {"type": "noop", "next": "conf"},
        "conf": {"type": "conference", "room": "standup", "role": "moderator", "on": {"played": "bye", "failed": "bye", "error": "bye"}, "next": "bye"},
        "bye": {"type": "hangup", "cause": "normal", "reason": "done"}
    }})
}

#[test]
fn every_node_type_parses_validates_and_round_trips() {
    let text = every_node_type().to_string();
    let def = parse_and_validate(&text).unwrap();
    let mut types: Vec<&str> = def.nodes.values().map(Node::type_name).collect();
    types.sort();
    types.dedup();
    assert_eq!(types, ["branch", "conference", "dial", "enqueue", "gather", "goto", "hangup", "menu", "noop", "pause", "play", "record", "set", "subflow"]);
    let Node::Record(r) = &def.nodes["closed"] else { panic!("voicemail is an alias of record") };
    assert_eq!((r.beep, r.max_secs, r.silence_secs, r.finish_key.as_deref(), r.save_as.as_str()), (false, 60, 0, None, "vm_key"));
    let Node::Branch(b) = &def.nodes["route"] else { panic!() };
    assert_eq!(b.cases[0].when, Condition::Calendar { calendar: CAL.into(), is: vec![CalendarState::Holiday] });
    assert_eq!(
        b.cases[2].when,
        Condition::All(vec![
            Condition::Var { var: "caller".into(), test: VarTest::Prefix("+44".into()) },
            Condition::Not(Box::new(Condition::Var { var: "vip".into(), test: VarTest::Exists(true) })),
        ])
    );
    let Node::Dial(d) = &def.nodes["ext"] else { panic!() };
    assert_eq!(d.targets[0], Endpoint::User(USR.into()));
    assert_eq!(d.targets[3], Endpoint::Sip("sip:bob@example.com".into()));
    assert_eq!(d.strategy, DialStrategy::Sequential);
    // round trip: serialize, parse again, same nodes
    let back = serde_json::to_string(&def).unwrap();
    let again = parse_and_validate(&back).unwrap();
    assert_eq!(again.nodes, def.nodes);
    assert_eq!(serde_json::to_value(&again).unwrap(), serde_json::to_value(&def).unwrap());
}

#[test]
fn defaults_are_documented_values() {
    let def = parse(&with_node(json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "default": "bye"})).to_string()).unwrap();
    let Node::Gather(g) = &def.nodes["n"] else { panic!() };
    assert_eq!((g.min_digits, g.max_digits, g.finish_key.as_deref()), (1, 1, Some("#")));
    assert_eq!((g.first_digit_timeout_ms, g.inter_digit_timeout_ms, g.retries, g.save_as.as_str()), (5000, 3000, 2, "digits"));
    let def = parse(&with_node(json!({"type": "record"})).to_string()).unwrap();
    let Node::Record(r) = &def.nodes["n"] else { panic!() };
    assert_eq!((r.beep, r.max_secs, r.silence_secs, r.finish_key.as_deref(), r.save_as.as_str()), (true, 120, 5, Some("#"), "recording"));
    let def = parse(&with_node(json!({"type": "dial", "targets": [{"number": "+15557654321"}]})).to_string()).unwrap();
    let Node::Dial(d) = &def.nodes["n"] else { panic!() };
    assert_eq!((d.strategy, d.timeout_secs), (DialStrategy::Simultaneous, 30));
    let def = parse(&with_node(json!({"type": "enqueue", "queue": "q", "announce": {}})).to_string()).unwrap();
    let Node::Enqueue(e) = &def.nodes["n"] else { panic!() };
    assert_eq!(e.max_wait_secs, 900);
    assert_eq!(e.announce.as_ref().map(|a| (a.every_secs, a.position)), Some((60, true)));
    let def = parse(&with_node(json!({"type": "conference", "room": "r"})).to_string()).unwrap();
    assert!(matches!(&def.nodes["n"], Node::Conference(c) if c.role == ConferenceRole::Participant));
}

#[test]
fn syntax_errors_name_the_node() {
    let e = |v: Value| triples(v);
    assert_eq!(
        e(with_node(json!({"type": "play", "tts": {"text": "x"}, "nxet": "bye"}))),
        vec![(Some("n".into()), ErrorKind::Syntax, "unknown field `nxet`, expected one of `media`, `url`, `tts`, `loops`, `next`, `on`".into())]
    );
    assert_eq!(
        e(with_node(json!({"type": "dance"}))),
        vec![(
            Some("n".into()),
            ErrorKind::Syntax,
            "unknown variant `dance`, expected one of `play`, `gather`, `menu`, `dial`, `enqueue`, `record`, `voicemail`, `conference`, `set`, `branch`, `goto`, `subflow`, `hangup`, `pause`, `noop`".into()
        )]
    );
    assert_eq!(e(with_node(json!({"type": "goto"}))), vec![(Some("n".into()), ErrorKind::Syntax, "missing field `target`".into())]);
    assert_eq!(e(with_node(json!({"next": "bye"}))), vec![(Some("n".into()), ErrorKind::Syntax, "missing field `type`".into())]);
    let msgs = e(with_node(json!({"type": "pause", "ms": "1000"})));
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].2.starts_with("invalid type: string \"1000\", expected u32"), "{msgs:?}");
    let msgs = e(with_node(json!({"type": "play", "tts": {"text": "x", "speed": 2}})));
    assert!(msgs[0].2.starts_with("unknown field `speed`"), "nested unknown fields too: {msgs:?}");
    let msgs = e(with_node(json!({"type": "dial", "targets": [{"phone": "+1555"}]})));
    assert!(msgs[0].2.starts_with("unknown variant `phone`, expected one of `user`, `device`, `number`, `sip`"), "{msgs:?}");
    let msgs = e(with_node(json!({"type": "hangup", "cause": "angry"})));
    assert!(msgs[0].2.starts_with("unknown variant `angry`"), "{msgs:?}");
    // condition shapes
    let branch = |when: Value| with_node(json!({"type": "branch", "cases": [{"when": when, "next": "bye"}]}));
    let msg = |v: Value| e(v).into_iter().map(|t| t.2).collect::<Vec<_>>().join(" | ");
    assert_eq!(
        msg(branch(json!({"var": "a", "equals": "1", "prefix": "2"}))),
        "condition on var \"a\": give exactly one of equals, notEquals, in, prefix, pattern, exists"
    );
    assert_eq!(msg(branch(json!({"var": "a"}))), "condition on var \"a\": give exactly one of equals, notEquals, in, prefix, pattern, exists");
    assert_eq!(msg(branch(json!({"var": "a", "calendar": CAL, "is": "open"}))), "a condition has exactly one of var, calendar, all, any, not");
    assert_eq!(msg(branch(json!({}))), "a condition has exactly one of var, calendar, all, any, not");
    assert_eq!(msg(branch(json!({"calendar": CAL}))), format!("condition on calendar \"{CAL}\": \"is\" (open, closed, holiday or a list of them) is required"));
    assert_eq!(msg(branch(json!({"equals": "1", "all": []}))), "equals, notEquals, in, prefix, pattern and exists go with var");
    assert_eq!(msg(branch(json!({"is": "open", "any": []}))), "\"is\" goes with calendar");
    assert!(msg(branch(json!({"var": "a", "equals": "1", "typo": 1}))).starts_with("unknown field `typo`"));
    assert!(msg(branch(json!({"calendar": CAL, "is": "shut"}))).contains("did not match any variant"));
}

#[test]
fn top_level_errors() {
    let e = |text: &str| parse(text).unwrap_err().into_iter().map(|e| (e.kind, e.message)).collect::<Vec<_>>();
    let not_json = e("{nope");
    assert_eq!(not_json.len(), 1);
    assert_eq!(not_json[0].0, ErrorKind::Syntax);
    assert!(not_json[0].1.starts_with("not valid JSON: key must be a string at line 1 column 2"), "{not_json:?}");
    assert_eq!(e("[]"), vec![(ErrorKind::Syntax, "a flow definition is a JSON object with version, start and nodes".into())]);
    assert_eq!(
        e(r#"{"start":"a","nodes":{},"name":"x"}"#),
        vec![
            (ErrorKind::Syntax, "unknown field \"name\" (expected version, start, nodes)".into()),
            (ErrorKind::Version, "version: missing (this build reads version 1)".into()),
        ]
    );
    assert_eq!(e(r#"{"version":2,"start":"a","nodes":{}}"#), vec![(ErrorKind::Version, "version: unsupported version 2 (this build reads version 1)".into())]);
    assert_eq!(
        e(r#"{"version":"1","start":"a","nodes":{}}"#),
        vec![(ErrorKind::Version, "version: unsupported version \"1\" (this build reads version 1)".into())]
    );
    assert_eq!(
        e(r#"{"version":1,"nodes":[]}"#),
        vec![
            (ErrorKind::Syntax, "start: missing (the id of the first node)".into()),
            (ErrorKind::Syntax, "nodes: expected an object of node id → node".into())
        ]
    );
    assert_eq!(
        e(r#"{"version":1,"start":7}"#),
        vec![(ErrorKind::Syntax, "start: expected a node id (string)".into()), (ErrorKind::Syntax, "nodes: missing (an object of node id → node)".into())]
    );
    // every node's syntax error is reported, not only the first
    let both = parse(r#"{"version":1,"start":"a","nodes":{"a":{"type":"x"},"b":{"type":"y"}}}"#).unwrap_err();
    assert_eq!(both.iter().map(|e| e.node.as_deref()).collect::<Vec<_>>(), [Some("a"), Some("b")]);
    // size limits
    let big = format!(r#"{{"version":1,"start":"a","nodes":{{"a":{{"type":"play","tts":{{"text":"{}"}}}}}}}}"#, "x".repeat(MAX_DEFINITION_BYTES));
    assert_eq!(parse(&big).unwrap_err()[0].kind, ErrorKind::TooLarge);
    let many: serde_json::Map<String, Value> = (0..=MAX_NODES).map(|i| (format!("n{i}"), json!({"type": "noop"}))).collect();
    let v = json!({"version": 1, "start": "n0", "nodes": many});
    assert_eq!(parse(&v.to_string()).unwrap_err(), vec![top(ErrorKind::TooLarge, "nodes: 501 nodes, at most 500")]);
    // Display and describe
    let errs = errors_of(json!({"version": 1, "start": "a", "nodes": {"a": {"type": "goto", "target": "zz"}}}));
    assert_eq!(describe(&errs), "node \"a\": target: no node \"zz\"");
}

#[test]
fn unknown_targets_in_every_field() {
    has_error(json!({"version": 1, "start": "nope", "nodes": {"bye": {"type": "hangup"}}}), None, ErrorKind::UnknownTarget, "start: no node \"nope\"");
    let cases = [
        (json!({"type": "play", "tts": {"text": "x"}, "next": "bey"}), "next: no node \"bey\""),
        (json!({"type": "play", "tts": {"text": "x"}, "next": "bye", "on": {"error": "oops"}}), "on.\"error\": no node \"oops\""),
        (json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "branches": {"1": "one"}, "fallback": "bye"}), "branches.\"1\": no node \"one\""),
        (
            json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "patterns": [{"pattern": "X", "next": "p"}], "fallback": "bye"}),
            "patterns[0].next: no node \"p\"",
        ),
        (json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "default": "d", "fallback": "bye"}), "default: no node \"d\""),
        (json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "default": "bye", "fallback": "f"}), "fallback: no node \"f\""),
        (json!({"type": "menu", "prompt": {"tts": {"text": "x"}}, "options": {"1": "bye", "2": "two"}}), "options.\"2\": no node \"two\""),
        (json!({"type": "dial", "targets": [{"number": "+15557654321"}], "on": {"busy": "b"}, "next": "bye"}), "on.\"busy\": no node \"b\""),
        (json!({"type": "branch", "cases": [{"when": {"var": "a", "exists": true}, "next": "c"}], "default": "bye"}), "cases[0].next: no node \"c\""),
        (json!({"type": "branch", "cases": [{"when": {"var": "a", "exists": true}, "next": "bye"}], "default": "dd"}), "default: no node \"dd\""),
        (json!({"type": "goto", "target": "t"}), "target: no node \"t\""),
        (json!({"type": "subflow", "flow": SUB, "next": "s"}), "next: no node \"s\""),
        (json!({"type": "set", "vars": {"a": "1"}, "next": "s"}), "next: no node \"s\""),
    ];
    for (node, message) in cases {
        has_error(with_node(node), Some("n"), ErrorKind::UnknownTarget, message);
    }
}

#[test]
fn unreachable_nodes_are_named() {
    let v = json!({"version": 1, "start": "a", "nodes": {
        "a": {"type": "play", "tts": {"text": "x"}, "next": "bye"},
        "orphan": {"type": "play", "tts": {"text": "y"}, "next": "orphan2"},
        "orphan2": {"type": "hangup"},
        "bye": {"type": "hangup"}
    }});
    assert_eq!(
        triples(v),
        vec![
            (Some("orphan".into()), ErrorKind::Unreachable, "unreachable from start \"a\"".into()),
            (Some("orphan2".into()), ErrorKind::Unreachable, "unreachable from start \"a\"".into()),
        ]
    );
    // reachable through on / branches / patterns / fallback / sub-flow next counts
    let v = json!({"version": 1, "start": "g", "nodes": {
        "g": {"type": "gather", "prompt": {"tts": {"text": "x"}}, "branches": {"1": "b1"}, "patterns": [{"pattern": "2", "next": "p2"}], "fallback": "fb", "on": {"error": "err"}},
        "b1": {"type": "subflow", "flow": SUB, "next": "after"},
        "p2": {"type": "hangup"}, "fb": {"type": "hangup"}, "err": {"type": "hangup"}, "after": {"type": "hangup"}
    }});
    assert_eq!(triples(v), vec![]);
}

#[test]
fn loops_without_input_or_exit() {
    // goto ping-pong
    let v = json!({"version": 1, "start": "a", "nodes": {
        "a": {"type": "goto", "target": "b"},
        "b": {"type": "goto", "target": "a"}
    }});
    assert_eq!(
        triples(v),
        vec![(
            Some("a".into()),
            ErrorKind::Loop,
            "loop with no input and no exit: nodes \"a\", \"b\" only lead to each other and never wait for the caller".into()
        )]
    );
    // a self-loop
    let v = json!({"version": 1, "start": "s", "nodes": {"s": {"type": "noop", "next": "s"}}});
    assert_eq!(triples(v)[0].1, ErrorKind::Loop);
    // set → branch with both ways back into the cycle: still no exit
    let v = json!({"version": 1, "start": "play", "nodes": {
        "play": {"type": "play", "tts": {"text": "x"}, "next": "s"},
        "s": {"type": "set", "vars": {"n": "1"}, "next": "b"},
        "b": {"type": "branch", "cases": [{"when": {"var": "n", "equals": "1"}, "next": "s"}], "default": "s"}
    }});
    assert_eq!(
        triples(v),
        vec![(
            Some("b".into()),
            ErrorKind::Loop,
            "loop with no input and no exit: nodes \"b\", \"s\" only lead to each other and never wait for the caller".into()
        )]
    );
    // the same cycle with a way out (branch default to a hangup) is accepted
    let v = json!({"version": 1, "start": "s", "nodes": {
        "s": {"type": "set", "vars": {"n": "1"}, "next": "b"},
        "b": {"type": "branch", "cases": [{"when": {"var": "n", "equals": "2"}, "next": "s"}], "default": "bye"},
        "bye": {"type": "hangup"}
    }});
    assert_eq!(triples(v), vec![]);
    // a branch without default can end the flow: that is an exit
    let v = json!({"version": 1, "start": "b", "nodes": {
        "b": {"type": "branch", "cases": [{"when": {"var": "n", "equals": "2"}, "next": "b"}]}
    }});
    assert_eq!(triples(v), vec![]);
    // a cycle through a blocking node waits for the caller every turn: fine
    let v = json!({"version": 1, "start": "menu", "nodes": {
        "menu": {"type": "menu", "prompt": {"tts": {"text": "x"}}, "options": {"9": "again"}},
        "again": {"type": "goto", "target": "menu"}
    }});
    assert_eq!(triples(v), vec![]);
    // unreachable closed loops are reported as unreachable, not twice
    let v = json!({"version": 1, "start": "bye", "nodes": {
        "bye": {"type": "hangup"},
        "x": {"type": "goto", "target": "y"},
        "y": {"type": "goto", "target": "x"}
    }});
    assert_eq!(triples(v).iter().map(|t| t.1).collect::<Vec<_>>(), [ErrorKind::Unreachable, ErrorKind::Unreachable]);
}

#[test]
fn missing_prompts() {
    only_error(
        with_node(json!({"type": "gather", "default": "bye", "fallback": "bye"})),
        "n",
        ErrorKind::MissingPrompt,
        "prompt: missing (a gather needs something to play)",
    );
    only_error(with_node(json!({"type": "menu", "options": {"1": "bye"}})), "n", ErrorKind::MissingPrompt, "prompt: missing (a menu needs something to play)");
    only_error(with_node(json!({"type": "play", "next": "bye"})), "n", ErrorKind::MissingPrompt, "nothing to play (give exactly one of media, url, tts)");
    only_error(
        with_node(json!({"type": "play", "media": "a.wav", "tts": {"text": "x"}, "next": "bye"})),
        "n",
        ErrorKind::MissingPrompt,
        "more than one of media, url, tts (give exactly one)",
    );
    only_error(with_node(json!({"type": "play", "tts": {"text": "  "}, "next": "bye"})), "n", ErrorKind::MissingPrompt, "tts.text: empty");
    only_error(
        with_node(json!({"type": "gather", "prompt": {}, "default": "bye"})),
        "n",
        ErrorKind::MissingPrompt,
        "prompt: is empty (give exactly one of media, url, tts)",
    );
    only_error(
        with_node(json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "invalidPrompt": {}, "default": "bye"})),
        "n",
        ErrorKind::MissingPrompt,
        "invalidPrompt: is empty (give exactly one of media, url, tts)",
    );
    only_error(
        with_node(json!({"type": "enqueue", "queue": "q", "announce": {"position": false}, "next": "bye"})),
        "n",
        ErrorKind::MissingPrompt,
        "announce: neither position nor prompt: nothing to announce",
    );
}

#[test]
fn digit_patterns_and_branch_keys() {
    let gather = |extra: Value| {
        let mut node = json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "fallback": "bye"});
        node.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        with_node(node)
    };
    only_error(
        gather(json!({"maxDigits": 3, "patterns": [{"pattern": "1A", "next": "bye"}]})),
        "n",
        ErrorKind::BadPattern,
        "patterns[0].pattern: bad digit pattern \"1A\": unexpected 'A' at position 2 (use 0-9 * # X Z N [..] and a final . or !)",
    );
    only_error(
        gather(json!({"maxDigits": 2, "patterns": [{"pattern": "1XX", "next": "bye"}]})),
        "n",
        ErrorKind::BadPattern,
        "patterns[0].pattern: \"1XX\" can never match: the gather collects 1-2 keys (minDigits-maxDigits)",
    );
    only_error(
        gather(json!({"minDigits": 3, "maxDigits": 4, "patterns": [{"pattern": "1X", "next": "bye"}]})),
        "n",
        ErrorKind::BadPattern,
        "patterns[0].pattern: \"1X\" can never match: the gather collects 3-4 keys (minDigits-maxDigits)",
    );
    // an open tail can always match enough keys
    assert_eq!(triples(gather(json!({"minDigits": 3, "maxDigits": 4, "patterns": [{"pattern": "1.", "next": "bye"}]}))), vec![]);
    only_error(
        gather(json!({"branches": {"12": "bye"}})),
        "n",
        ErrorKind::BadValue,
        "branches.\"12\": 2 keys, but the gather collects 1-1 (minDigits-maxDigits)",
    );
    only_error(gather(json!({"branches": {"1a": "bye"}})), "n", ErrorKind::BadValue, "branches.\"1a\": not a key sequence of 0-9 * #");
    only_error(
        gather(json!({"maxDigits": 4, "branches": {"12#": "bye"}})),
        "n",
        ErrorKind::BadValue,
        "branches.\"12#\": contains the finish key \"#\", so it can never be entered",
    );
    // without a finish key, # is an ordinary key
    assert_eq!(triples(gather(json!({"maxDigits": 4, "finishKey": null, "branches": {"12#": "bye"}}))), vec![]);
    only_error(gather(json!({})), "n", ErrorKind::BadValue, "no branches, patterns or default: every input would be invalid");
    only_error(
        gather(json!({"default": "bye", "finishKey": "##"})),
        "n",
        ErrorKind::BadValue,
        "finishKey: \"##\" is not one key of 0-9 * # (use null for none)",
    );
    // patterns in branch conditions
    only_error(
        with_node(json!({"type": "branch", "cases": [{"when": {"not": {"var": "digits", "pattern": "[3-1]"}}, "next": "bye"}]})),
        "n",
        ErrorKind::BadPattern,
        "cases[0].when.not.pattern: bad digit pattern \"[3-1]\": range 3-1 in class at position 1 is backwards",
    );
}

#[test]
fn value_ranges_and_ids() {
    // errors of node "n" (the helper's "bye" may be unreachable: not what these cases are about)
    let n = |node: Value| triples(with_node(node)).into_iter().filter(|t| t.0.as_deref() == Some("n")).map(|t| (t.1, t.2)).collect::<Vec<_>>();
    use ErrorKind::BadValue as BV;
    assert_eq!(n(json!({"type": "play", "tts": {"text": "x"}, "loops": 0, "next": "bye"})), vec![(BV, "loops: 0 is out of range 1-100".into())]);
    assert_eq!(
        n(json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "minDigits": 4, "maxDigits": 2, "default": "bye"})),
        vec![(BV, "maxDigits: 2 is out of range 4-32".into())]
    );
    assert_eq!(
        n(
            json!({"type": "gather", "prompt": {"tts": {"text": "x"}}, "minDigits": 0, "maxDigits": 40, "firstDigitTimeoutMs": 100, "interDigitTimeoutMs": 999999, "retries": 11, "saveAs": "1x", "default": "bye"})
        ),
        vec![
            (BV, "minDigits: 0 is out of range 1-32".into()),
            (BV, "maxDigits: 40 is out of range 1-32".into()),
            (BV, "firstDigitTimeoutMs: 100 is out of range 500-120000".into()),
            (BV, "interDigitTimeoutMs: 999999 is out of range 500-60000".into()),
            (BV, "retries: 11 is out of range 0-10".into()),
            (BV, "saveAs: bad variable name \"1x\" (expected [A-Za-z_][A-Za-z0-9_]*, at most 64 chars)".into()),
        ]
    );
    assert_eq!(
        n(json!({"type": "menu", "prompt": {"tts": {"text": "x"}}, "options": {}})),
        vec![(BV, "options: empty (map keys such as \"1\" to nodes)".into())]
    );
    assert_eq!(
        n(json!({"type": "menu", "prompt": {"tts": {"text": "x"}}, "options": {"x": "bye"}})),
        vec![(BV, "options.\"x\": not a key sequence of 1-8 keys of 0-9 * #".into())]
    );
    assert_eq!(
        n(
            json!({"type": "dial", "targets": [{"user": DEV}, {"device": "dev_x"}, {"number": "555-1234"}, {"sip": "http://x"}], "timeoutSecs": 1, "callerId": {"number": "abc", "name": "\"Evil\""}})
        ),
        vec![
            (BV, format!("targets[0]: expected a usr_ id, got \"{DEV}\"")),
            (BV, "targets[1]: expected a dev_ id, got \"dev_x\"".into()),
            (BV, "targets[2]: bad number \"555-1234\" (digits, optionally with a leading +)".into()),
            (BV, "targets[3]: bad SIP URI \"http://x\" (sip: or sips:, no spaces)".into()),
            (BV, "timeoutSecs: 1 is out of range 5-600".into()),
            (BV, "callerId.number: bad number \"abc\"".into()),
            (BV, "callerId.name: \"\\\"Evil\\\"\" (1-64 chars, no quotes or angle brackets)".into()),
        ]
    );
    assert_eq!(n(json!({"type": "dial", "targets": []})), vec![(BV, "targets: expected 1-20 targets".into())]);
    assert_eq!(
        n(json!({"type": "dial", "targets": [{"number": "+15557654321"}], "on": {"played": "bye", "recorded": "bye"}})),
        vec![
            (BV, "on.\"played\": not an outcome of a dial node (expected one of answered, no-answer, busy, failed, error)".into()),
            (BV, "on.\"recorded\": not an outcome of a dial node (expected one of answered, no-answer, busy, failed, error)".into()),
        ]
    );
    assert_eq!(
        n(json!({"type": "enqueue", "queue": "sales queue", "maxWaitSecs": 0, "holdMusic": {"media": "../secret"}, "announce": {"everySecs": 5}})),
        vec![
            (BV, "queue: bad queue id \"sales queue\" (1-64 chars of A-Z a-z 0-9 _ -)".into()),
            (BV, "holdMusic.media: bad media key \"../secret\" (1-256 chars of A-Z a-z 0-9 . _ - /, relative, no empty or dot segments)".into()),
            (BV, "maxWaitSecs: 0 is out of range 1-14400".into()),
            (BV, "announce.everySecs: 5 is out of range 15-3600".into()),
        ]
    );
    assert_eq!(
        n(json!({"type": "record", "maxSecs": 0, "silenceSecs": 61, "finishKey": "x", "mailbox": "a/b", "on": {"busy": "bye"}})),
        vec![
            (BV, "on.\"busy\": not an outcome of a record node (expected one of recorded, no-input, error)".into()),
            (BV, "maxSecs: 0 is out of range 1-3600".into()),
            (BV, "silenceSecs: 61 is out of range 0-60".into()),
            (BV, "finishKey: \"x\" is not one key of 0-9 * # (use null for none)".into()),
            (BV, "mailbox: bad mailbox \"a/b\" (1-64 chars of A-Z a-z 0-9 _ -)".into()),
        ]
    );
    assert_eq!(n(json!({"type": "conference", "room": "a b"})), vec![(BV, "room: bad room name \"a b\" (1-64 chars of A-Z a-z 0-9 _ -)".into())]);
    assert_eq!(
        n(json!({"type": "set", "vars": {"bad-name": "1", "t": "${unclosed", "u": "${9x}"}, "next": "bye"})),
        vec![
            (BV, "vars.\"bad-name\": bad variable name \"bad-name\" (expected [A-Za-z_][A-Za-z0-9_]*, at most 64 chars)".into()),
            (BV, "vars.\"t\": unterminated \"${\" in \"${unclosed\"".into()),
            (BV, "vars.\"u\": bad variable reference \"${9x}\" in \"${9x}\"".into()),
        ]
    );
    assert_eq!(n(json!({"type": "set", "vars": {}})), vec![(BV, "vars: expected 1-64 variables".into())]);
    assert_eq!(n(json!({"type": "branch", "cases": []})), vec![(BV, "cases: expected 1-50 cases".into())]);
    assert_eq!(
        n(json!({"type": "branch", "cases": [
            {"when": {"calendar": "cal-1", "is": []}, "next": "bye"},
            {"when": {"var": "a", "in": []}, "next": "bye"},
            {"when": {"any": []}, "next": "bye"}
        ]})),
        vec![
            (BV, "cases[0].when.calendar: expected a cal_ id, got \"cal-1\"".into()),
            (BV, "cases[0].when.is: empty (expected open, closed or holiday)".into()),
            (BV, "cases[1].when.in: expected 1-50 values".into()),
            (BV, "cases[2].when.any: expected 1-50 conditions".into()),
        ]
    );
    let mut deep = json!({"var": "a", "exists": true});
    for _ in 0..9 {
        deep = json!({"not": deep});
    }
    assert_eq!(
        n(json!({"type": "branch", "cases": [{"when": deep, "next": "bye"}]})),
        vec![(ErrorKind::TooLarge, format!("cases[0].when{}: conditions nested deeper than 8", ".not".repeat(8)))]
    );
    assert_eq!(n(json!({"type": "subflow", "flow": "flw_1"})), vec![(BV, "flow: expected a flow_ id, got \"flw_1\"".into())]);
    assert_eq!(n(json!({"type": "pause", "ms": 0})), vec![(BV, "ms: 0 is out of range 1-300000".into())]);
    assert_eq!(n(json!({"type": "hangup", "reason": "x\ny"})), vec![(BV, "reason: at most 200 printable characters".into())]);
    assert_eq!(
        n(json!({"type": "play", "url": "ftp://x", "next": "bye"})),
        vec![(BV, "url: bad URL \"ftp://x\" (http:// or https://, at most 2048 chars, no spaces)".into())]
    );
    assert_eq!(
        n(json!({"type": "play", "tts": {"text": "Hi ${name", "voice": "a voice", "language": "english"}, "next": "bye"})),
        vec![
            (BV, "tts.text: unterminated \"${\" in \"Hi ${name\"".into()),
            (BV, "tts.voice: bad voice name \"a voice\"".into()),
            (BV, "tts.language: bad language tag \"english\" (e.g. en-US)".into()),
        ]
    );
    assert_eq!(
        n(json!({"type": "play", "tts": {"text": "x".repeat(MAX_TTS_CHARS + 1)}, "next": "bye"})),
        vec![(BV, "tts.text: 2001 characters, at most 2000".into())]
    );
    // node ids
    let v = json!({"version": 1, "start": "a b", "nodes": {"a b": {"type": "hangup"}}});
    assert_eq!(triples(v), vec![(Some("a b".into()), BV, "bad node id (1-64 chars of A-Z a-z 0-9 _ -)".into())]);
    let v = json!({"version": 1, "start": "a", "nodes": {}});
    assert_eq!(triples(v), vec![(None, BV, "nodes: empty".into()), (None, ErrorKind::UnknownTarget, "start: no node \"a\"".into())]);
}

#[test]
fn every_problem_is_reported_at_once() {
    let v = json!({"version": 1, "start": "menu", "nodes": {
        "menu": {"type": "menu", "options": {"1": "sales", "2": "nowhere"}},
        "sales": {"type": "enqueue", "queue": "sales", "next": "bye"},
        "bye": {"type": "hangup"},
        "lost": {"type": "hangup"}
    }});
    assert_eq!(
        triples(v),
        vec![
            (Some("menu".into()), ErrorKind::MissingPrompt, "prompt: missing (a menu needs something to play)".into()),
            (Some("menu".into()), ErrorKind::UnknownTarget, "options.\"2\": no node \"nowhere\"".into()),
            (Some("lost".into()), ErrorKind::Unreachable, "unreachable from start \"menu\"".into()),
        ]
    );
}

#[test]
fn validation_errors_serialize_for_the_api() {
    let errs = errors_of(json!({"version": 1, "start": "a", "nodes": {"a": {"type": "goto", "target": "zz"}}}));
    assert_eq!(serde_json::to_value(&errs).unwrap(), json!([{"node": "a", "kind": "unknown-target", "message": "target: no node \"zz\""}]));
    let errs = parse("[]").unwrap_err();
    assert_eq!(
        serde_json::to_value(&errs).unwrap(),
        json!([{"kind": "syntax", "message": "a flow definition is a JSON object with version, start and nodes"}])
    );
}

#[test]
fn templates() {
    let vars = Vars::from([("name".into(), "Ann".into()), ("n".into(), "3".into())]);
    assert_eq!(interpolate("Hi ${name}, you have ${n} messages", &vars), "Hi Ann, you have 3 messages");
    assert_eq!(interpolate("${missing}|", &vars), "|");
    assert_eq!(interpolate("$5 and ${ not a ref } and ${name", &vars), "$5 and ${ not a ref } and ${name");
    assert_eq!(interpolate("${name}${name}", &vars), "AnnAnn");
    assert_eq!(interpolate("ü ${name} ü", &vars), "ü Ann ü");
    assert!(check_template("plain $5").is_ok());
    assert!(check_template("${a}${b_2}").is_ok());
    assert!(check_template("${").is_err());
    assert!(check_template("${a-b}").is_err());
}

#[test]
fn endpoints_label_and_serialize_as_documented() {
    let all = [
        (json!({"user": USR}), Endpoint::User(USR.into()), format!("user {USR}")),
        (json!({"device": DEV}), Endpoint::Device(DEV.into()), format!("device {DEV}")),
        (json!({"number": "+15557654321"}), Endpoint::Number("+15557654321".into()), "number +15557654321".to_string()),
        (json!({"sip": "sip:bob@example.com"}), Endpoint::Sip("sip:bob@example.com".into()), "sip sip:bob@example.com".to_string()),
    ];
    for (v, e, label) in all {
        assert_eq!(serde_json::from_value::<Endpoint>(v.clone()).unwrap(), e);
        assert_eq!(serde_json::to_value(&e).unwrap(), v);
        assert_eq!(e.label(), label);
    }
}
