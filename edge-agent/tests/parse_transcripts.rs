//! Every transcript's S->C stream, split into arbitrary chunks (deterministic seeds,
//! including 1-byte chunks), parses into exactly the recorded messages, with the
//! types and event names listed in SUMMARY.lst.

mod support;

use edge_agent::esl::{parse_event, Message, MessageKind, Parser};
use edge_agent::transcript::Dir;
use std::collections::HashMap;
use support::*;

/// SUMMARY.lst: per transcript, per connection label, the `<<` lines (type + rest).
fn summary() -> HashMap<(String, Option<String>), Vec<(String, String)>> {
    let text = std::fs::read_to_string(fixtures().join("SUMMARY.lst")).expect("SUMMARY.lst");
    let mut out: HashMap<(String, Option<String>), Vec<(String, String)>> = HashMap::new();
    let mut file = String::new();
    for line in text.lines() {
        if let Some(f) = line.strip_prefix("===== ") {
            file = f.trim().to_string();
        } else if let Some(rest) = line.strip_prefix(" << ") {
            let (label, rest) = match rest.strip_prefix('[') {
                Some(r) => {
                    let (l, r) = r.split_once("] ").unwrap();
                    (Some(l.to_string()), r)
                }
                None => (None, rest),
            };
            let (ty, more) = rest.split_once(' ').unwrap_or((rest, ""));
            out.entry((file.clone(), label)).or_default().push((ty.to_string(), more.to_string()));
        }
    }
    out
}

fn parse_chunked(stream: &[u8], seed: u64, max: usize) -> Vec<Message> {
    let mut p = Parser::default();
    let mut v = Vec::new();
    for c in chunks(stream, seed, max) {
        p.feed(c);
        while let Some(m) = p.next().unwrap_or_else(|e| panic!("seed {seed} max {max}: {e}")) {
            v.push(m);
        }
    }
    assert_eq!(p.buffered(), 0, "bytes left over");
    v
}

fn kind_name(k: &MessageKind) -> &'static str {
    match k {
        MessageKind::AuthRequest => "auth/request",
        MessageKind::CommandReply => "REPLY",
        MessageKind::ApiResponse => "API",
        MessageKind::EventPlain => "EVENT-PLAIN",
        MessageKind::EventJson => "EVENT-JSON",
        MessageKind::EventXml => "EVENT-XML",
        MessageKind::DisconnectNotice => "text/disconnect-notice",
        MessageKind::RudeRejection => "text/rude-rejection",
        MessageKind::LogData => "log/data",
        MessageKind::Other(_) => "other",
    }
}

#[test]
fn every_transcript_parses_identically_under_any_chunking() {
    let summary = summary();
    let mut total = 0;
    let mut kinds: HashMap<&'static str, usize> = HashMap::new();
    for t in all_transcripts() {
        for label in t.labels() {
            let blocks: Vec<_> = t.connection(label.as_deref()).into_iter().filter(|b| b.dir == Dir::S2C).cloned().collect();
            let stream = t.stream(label.as_deref(), Dir::S2C);
            // The framed payloads equal the raw capture.
            let raw = fixtures().join("raw").join(format!("{}.s2c.raw", t.raw_stem(label.as_deref())));
            if blocks.is_empty() {
                continue;
            }
            assert_eq!(std::fs::read(&raw).unwrap_or_else(|e| panic!("{}: {e}", raw.display())), stream, "{}", raw.display());

            let expected = summary.get(&(t.name.clone(), label.clone())).unwrap_or_else(|| panic!("{} {label:?} not in SUMMARY.lst", t.name));
            assert_eq!(expected.len(), blocks.len(), "{} {label:?}: SUMMARY vs transcript", t.name);

            let reference = parse_chunked(&stream, 0, stream.len().max(1));
            assert_eq!(reference.len(), blocks.len(), "{} {label:?}", t.name);
            for (i, (m, b)) in reference.iter().zip(&blocks).enumerate() {
                // framing: each message is exactly one recorded block
                assert_eq!(m.wire_len, b.bytes.len(), "{} {label:?} #{i}", t.name);
                let (ty, rest) = &expected[i];
                let k = m.kind();
                assert_eq!(kind_name(&k), ty.as_str(), "{} {label:?} #{i}", t.name);
                *kinds.entry(kind_name(&k)).or_default() += 1;
                let mut words = rest.split_whitespace();
                match k {
                    MessageKind::CommandReply => {
                        assert_eq!(m.headers.get("Reply-Text").unwrap(), rest.as_str(), "{} #{i}", t.name);
                        assert!(m.body.is_none());
                    }
                    MessageKind::ApiResponse => {
                        let cl: usize = m.headers.get("Content-Length").unwrap().parse().unwrap();
                        assert_eq!(m.body.as_ref().unwrap().len(), cl);
                    }
                    k if k.is_event() => {
                        let ev = parse_event(m).unwrap_or_else(|e| panic!("{} #{i}: {e}", t.name));
                        assert_eq!(ev.name(), words.next(), "{} {label:?} #{i}", t.name);
                        if let Some(w) = words.next().filter(|w| w.len() == 8 && w.bytes().all(|c| c.is_ascii_hexdigit())) {
                            assert!(ev.unique_id().unwrap().starts_with(w), "{} #{i}: Unique-ID", t.name);
                        }
                        // events put Content-Length before Content-Type
                        assert!(m.headers.position("Content-Length") < m.headers.position("Content-Type"));
                    }
                    MessageKind::DisconnectNotice => {
                        assert_eq!(m.body.as_deref().unwrap_or(&[]).is_empty(), rest.starts_with("b''"), "{} #{i}", t.name);
                    }
                    _ => {}
                }
            }
            // Same messages whatever the chunking.
            for (seed, max) in [(1, 1), (2, 2), (3, 7), (4, 13), (5, 64), (6, 500), (7, 4096), (8, 3)] {
                assert_eq!(parse_chunked(&stream, seed, max), reference, "{} {label:?} seed {seed} max {max}", t.name);
            }
            total += reference.len();
        }
    }
    assert_eq!(total, 683, "messages in all transcripts (SUMMARY.lst has 683)");
    for k in ["auth/request", "REPLY", "API", "EVENT-PLAIN", "EVENT-JSON", "EVENT-XML", "text/disconnect-notice", "text/rude-rejection", "log/data"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k} seen");
    }
}

fn messages(t: &edge_agent::transcript::Transcript, label: Option<&str>) -> Vec<Message> {
    let s = t.stream(label, Dir::S2C);
    parse_chunked(&s, 42, 9)
}

#[test]
fn plain_json_and_xml_decode_to_the_same_events() {
    let t = transcript("14-event-formats-plain-json-xml.txt");
    let mut per_format = Vec::new();
    for label in ["plain", "json", "xml"] {
        let evs: Vec<_> = messages(&t, Some(label)).iter().filter(|m| m.kind().is_event()).map(|m| parse_event(m).unwrap()).collect();
        assert_eq!(evs.len(), 4, "{label}");
        per_format.push(evs);
    }
    for i in 0..4 {
        let (p, j, x) = (&per_format[0][i], &per_format[1][i], &per_format[2][i]);
        for h in ["Event-Name", "Unique-ID", "Job-UUID", "Event-Date-Local", "FreeSWITCH-IPv6", "Channel-Name", "Event-Sequence"] {
            assert_eq!(p.get(h), j.get(h), "#{i} {h} plain vs json");
            assert_eq!(p.get(h), x.get(h), "#{i} {h} plain vs xml");
        }
        assert_eq!(p.body, j.body, "#{i} body plain vs json");
        assert_eq!(p.body, x.body, "#{i} body plain vs xml");
    }
    let job = &per_format[0][0];
    assert_eq!(job.name(), Some("BACKGROUND_JOB"));
    assert_eq!(job.get("FreeSWITCH-IPv6"), Some("fd00::2"), "URL-decoded");
    assert_eq!(job.get("Event-Date-Local"), Some("2026-11-22 03:48:47"));
    assert_eq!(job.body.as_deref(), Some("FreeSWITCH Version 1.10.12-release~64bit ( 64bit)\n"), "inner Content-Length body");
    assert_eq!(per_format[0][1].name(), Some("CHANNEL_CREATE"));
    assert_eq!(per_format[2][3].body.as_deref(), Some("+OK ebff9a6f-7ccc-43ea-8a29-b648e8d5653e\n"), "xml originate job body");
}

#[test]
fn replies_put_content_type_first_and_the_connect_reply_does_not() {
    let t = transcript("03-api-commands.txt");
    let m = messages(&t, None);
    assert_eq!(m[0].kind(), MessageKind::AuthRequest);
    assert_eq!(m[2].headers.position("Content-Type"), Some(0));
    let exists = m.iter().find(|m| m.body.as_deref() == Some(b"false")).expect("uuid_exists reply without newline");
    assert_eq!(exists.kind(), MessageKind::ApiResponse);

    let t = transcript("13-outbound-socket.txt");
    let m = messages(&t, Some("outbound-8084"));
    let connect = &m[0];
    assert_eq!(connect.kind(), MessageKind::CommandReply);
    assert!(connect.headers.position("Content-Type").unwrap() > 50, "Content-Type after the channel data");
    assert!(connect.body.is_none());
    assert_eq!(connect.reply_text().as_deref(), Some("+OK"));
    assert_eq!(connect.headers.get("Socket-Mode"), Some("async"));
    assert_eq!(connect.headers.get("Unique-ID"), Some("534eef78-e845-466c-ae9e-70a51f1dbd09"));
    let linger = m.iter().find(|m| m.headers.get("Content-Disposition") == Some("linger")).expect("linger notice");
    assert_eq!(linger.kind(), MessageKind::DisconnectNotice);
    assert_eq!(linger.headers.get("Linger-Time"), Some("-1"));
    assert_eq!(linger.body.as_deref(), Some(&b""[..]));
    let bye = m.last().unwrap();
    assert_eq!(bye.headers.get("Content-Disposition"), Some("disconnect"));
    assert!(bye.body_str().starts_with("Disconnected, goodbye."));
}

#[test]
fn log_data_and_rude_rejection() {
    let t = transcript("15-log-noevents-misc-disconnect.txt");
    let logs: Vec<_> = messages(&t, None).into_iter().filter(|m| m.kind() == MessageKind::LogData).collect();
    assert_eq!(logs.len(), 2);
    assert_eq!(logs[0].headers.get("Log-Level"), Some("5"));
    assert_eq!(logs[0].headers.get("User-Data"), Some(""));
    assert!(logs[0].body_str().ends_with("esl-fixture-log-line-1\n"));
    assert!(logs[1].body_str().contains("[WARNING]"));

    let t = transcript("20-acl-rude-rejection.txt");
    for label in [None, Some("conn2")] {
        let m = messages(&t, label);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].kind(), MessageKind::RudeRejection);
        assert_eq!(m[0].body_str(), "Access Denied, go away.\n");
        assert_eq!(m[1].kind(), MessageKind::DisconnectNotice);
    }
}

#[test]
fn caps_apply_to_real_messages() {
    use edge_agent::esl::{Limits, ParseError};
    let t = transcript("13-outbound-socket.txt");
    let s = t.stream(Some("outbound-8084"), Dir::S2C);
    // the connect reply's header block is several KiB: a 1 KiB cap refuses it
    let mut p = Parser::new(Limits { max_header_block: 1024, ..Limits::default() });
    for c in chunks(&s, 9, 100) {
        p.feed(c);
    }
    assert_eq!(p.next(), Err(ParseError::HeaderBlockTooLarge { limit: 1024 }));
    // the json CHANNEL events are > 1 KiB bodies
    let t = transcript("04-originate-event-json-ALL.txt");
    let s = t.stream(None, Dir::S2C);
    let mut p = Parser::new(Limits { max_body: 1024, ..Limits::default() });
    p.feed(&s);
    let err = loop {
        match p.next() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no body over 1 KiB?"),
            Err(e) => break e,
        }
    };
    assert!(matches!(err, ParseError::BodyTooLarge { limit: 1024, .. }), "{err:?}");
}
