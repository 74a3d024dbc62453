//! The sans-IO connection state machine driven by transcript bytes; time is an argument.

mod support;

use edge_agent::esl::conn::SendError;
use edge_agent::esl::{ApiCommand, CloseReason, ConnConfig, Connection, EventFormat, Output, Reply, Subscription, Uuid};
use edge_agent::transcript::{Dir, Transcript};
use std::time::{Duration, Instant};
use support::*;

fn s2c(t: &Transcript, label: Option<&str>) -> Vec<Vec<u8>> {
    t.connection(label).into_iter().filter(|b| b.dir == Dir::S2C).map(|b| b.bytes.clone()).collect()
}
fn c2s(t: &Transcript, label: Option<&str>) -> Vec<Vec<u8>> {
    t.connection(label).into_iter().filter(|b| b.dir == Dir::C2S).map(|b| b.bytes.clone()).collect()
}
fn outputs(c: &mut Connection) -> Vec<Output> {
    std::iter::from_fn(|| c.poll_output()).collect()
}
fn tx(c: &mut Connection) -> Vec<u8> {
    c.poll_transmit().unwrap_or_default()
}
/// `api uuid_kill 0000...` (a recorded command line) → ApiCommand through the validating builder.
fn api_from_line(line: &str) -> ApiCommand {
    let mut it = line.split(' ');
    let mut c = ApiCommand::new(it.next().unwrap()).unwrap();
    for w in it {
        c = c.arg(w, "arg").unwrap();
    }
    c
}

fn ready(cfg: ConnConfig, t0: Instant, handshake: &[Vec<u8>]) -> Connection {
    let mut c = Connection::new(cfg, t0);
    for m in handshake {
        c.handle_bytes(m, t0);
    }
    assert!(c.is_ready(), "not ready after handshake: {:?}", outputs(&mut c));
    tx(&mut c);
    outputs(&mut c);
    c
}

#[test]
fn auth_ok_then_exit_sends_the_recorded_bytes() {
    let t = transcript("01-auth-ok.txt");
    let (s, c) = (s2c(&t, None), c2s(&t, None));
    let t0 = Instant::now();
    let mut conn = Connection::new(ConnConfig::new("ClueCon", None), t0);
    assert_eq!(conn.api(api_from_line("status"), t0), Err(SendError::NotReady));
    conn.handle_bytes(&s[0], t0);
    assert_eq!(tx(&mut conn), c[0]);
    conn.handle_bytes(&s[1], t0);
    assert_eq!(outputs(&mut conn), vec![Output::Ready]);
    let id = conn.exit(t0).unwrap();
    assert_eq!(tx(&mut conn), c[1]);
    conn.handle_bytes(&s[2], t0);
    conn.handle_bytes(&s[3], t0);
    assert_eq!(
        outputs(&mut conn),
        vec![Output::Reply { id, reply: Reply::Command("+OK bye".into()) }, Output::Closed(CloseReason::LocalExit)]
    );
    assert!(conn.poll_timeout().is_none());
}

#[test]
fn wrong_password_closes_with_the_reply_text() {
    let t = transcript("02-auth-fail.txt");
    let s = s2c(&t, Some("conn1"));
    let t0 = Instant::now();
    let mut conn = Connection::new(ConnConfig::new("WrongPassword", None), t0);
    for m in &s {
        conn.handle_bytes(m, t0);
    }
    assert_eq!(tx(&mut conn), c2s(&t, Some("conn1"))[0]);
    assert_eq!(outputs(&mut conn), vec![Output::Closed(CloseReason::AuthFailed("-ERR invalid".into()))]);
}

#[test]
fn pipelined_api_commands_are_matched_in_order_and_encoded_byte_exact() {
    let t = transcript("03-api-commands.txt");
    let (s, c) = (s2c(&t, None), c2s(&t, None));
    let t0 = Instant::now();
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s[..2]);
    // every `api ...` the capture sent, all at once (pipelined)
    let api_lines: Vec<String> = c[1..]
        .iter()
        .map(|b| String::from_utf8(b.clone()).unwrap())
        .take_while(|l| l.starts_with("api "))
        .map(|l| l.trim_end().trim_start_matches("api ").to_string())
        .collect();
    assert_eq!(api_lines.len(), 20);
    let ids: Vec<_> = api_lines.iter().map(|l| conn.api(api_from_line(l), t0).unwrap()).collect();
    let sent = tx(&mut conn);
    let recorded: Vec<u8> = c[1..=20].concat();
    assert_eq!(String::from_utf8_lossy(&sent), String::from_utf8_lossy(&recorded));
    assert_eq!(conn.pending_requests(), 20);
    // all replies in one go, split at odd places
    let replies: Vec<u8> = s[2..22].concat();
    for ch in chunks(&replies, 77, 11) {
        conn.handle_bytes(ch, t0);
    }
    let out = outputs(&mut conn);
    assert_eq!(out.len(), 20);
    let bodies: Vec<String> = out
        .iter()
        .zip(&ids)
        .map(|(o, id)| match o {
            Output::Reply { id: got, reply: Reply::Api(b) } if got == id => b.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(bodies[1], "{\"row_count\": 0}\n");
    assert_eq!(bodies[8], "-ERR No such channel!\n");
    assert_eq!(bodies[16], "false");
    assert_eq!(bodies[18], "hello world");
    assert_eq!(bodies[19], "vm");
    assert_eq!(conn.pending_requests(), 0);
}

#[test]
fn bgapi_jobs_complete_from_background_job_events() {
    let t = transcript("16-originate-errors-and-bgapi-jobuuid.txt");
    let (s, c) = (s2c(&t, None), c2s(&t, None));
    let t0 = Instant::now();
    let sub = Subscription::new(EventFormat::Json, &["BACKGROUND_JOB"]).unwrap();
    let mut conn = Connection::new(ConnConfig::new("ClueCon", Some(sub)), t0);
    conn.handle_bytes(&s[0], t0);
    conn.handle_bytes(&s[1], t0);
    assert_eq!(tx(&mut conn), [c[0].clone(), c[1].clone()].concat(), "auth then the subscription");
    assert!(outputs(&mut conn).is_empty(), "not ready before the subscription is acknowledged");
    conn.handle_bytes(&s[2], t0);
    assert_eq!(outputs(&mut conn), vec![Output::Ready]);

    // bgapi status with the client-chosen Job-UUID, exactly as recorded
    let job = Uuid::parse("11111111-2222-3333-4444-555555555555").unwrap();
    let id = conn.bgapi(api_from_line("status"), job.clone(), Duration::from_secs(5), t0).unwrap();
    assert_eq!(tx(&mut conn), c[5]);
    assert_eq!(conn.bgapi(api_from_line("status"), job.clone(), Duration::from_secs(5), t0), Err(SendError::DuplicateJob));
    conn.handle_bytes(&s[7], t0); // reply
    assert_eq!(outputs(&mut conn), vec![Output::JobAccepted { id, job_uuid: job.clone() }]);
    // an unrelated BACKGROUND_JOB (another client's job) is only an event
    conn.handle_bytes(&s[6], t0);
    assert!(matches!(&outputs(&mut conn)[..], [Output::Event(e)] if e.name() == Some("BACKGROUND_JOB")));
    conn.handle_bytes(&s[8], t0);
    match &outputs(&mut conn)[..] {
        [Output::JobDone { id: got, job_uuid, body }] => {
            assert_eq!((got, job_uuid), (&id, &job));
            assert!(body.starts_with("UP 0 years") && body.ends_with("8192K\n"), "{body:?}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(conn.pending_jobs(), 0);

    // a server that chose its own Job-UUID (transcript: bgapi without the header) is followed
    let mine = Uuid::parse("aaaaaaaa-2222-3333-4444-555555555555").unwrap();
    let id2 = conn.bgapi(api_from_line("originate"), mine, Duration::from_secs(5), t0).unwrap();
    tx(&mut conn);
    conn.handle_bytes(&s[5], t0);
    conn.handle_bytes(&s[6], t0);
    let out = outputs(&mut conn);
    assert!(matches!(&out[1], Output::JobDone { id, body, .. } if *id == id2 && body == "-ERR CALL_REJECTED\n"), "{out:?}");
}

#[test]
fn bgapi_refused_and_job_timeout() {
    let t0 = Instant::now();
    let t = transcript("16-originate-errors-and-bgapi-jobuuid.txt");
    let s = s2c(&t, None);
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s[..2]);
    let id = conn.bgapi(api_from_line("status"), Uuid::new_v4(), Duration::from_secs(3), t0).unwrap();
    conn.handle_bytes(b"Content-Type: command/reply\nReply-Text: -ERR no reply\n\n", t0);
    assert_eq!(outputs(&mut conn), vec![Output::JobFailed { id, reason: "-ERR no reply".into(), timed_out: false }]);

    let id = conn.bgapi(api_from_line("status"), Uuid::new_v4(), Duration::from_secs(3), t0).unwrap();
    conn.handle_bytes(&s[7], t0);
    outputs(&mut conn);
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    conn.handle_timeout(t0 + Duration::from_millis(2999));
    assert!(outputs(&mut conn).is_empty());
    conn.handle_timeout(t0 + Duration::from_secs(3));
    assert!(matches!(&outputs(&mut conn)[..], [Output::JobFailed { id: got, timed_out: true, .. }] if *got == id));
    assert!(!conn.is_closed(), "a lost job does not kill the connection");
}

#[test]
fn heartbeat_keeps_the_connection_alive_and_silence_kills_it() {
    let t = transcript("17-heartbeat-plain.txt");
    let (s, c) = (s2c(&t, None), c2s(&t, None));
    let t0 = Instant::now();
    let sub = Subscription::new(EventFormat::Plain, &["HEARTBEAT"]).unwrap();
    let mut cfg = ConnConfig::new("ClueCon", Some(sub));
    cfg.liveness_timeout = Duration::from_secs(30);
    let mut conn = Connection::new(cfg, t0);
    for m in &s[..3] {
        conn.handle_bytes(m, t0);
    }
    assert_eq!(tx(&mut conn), [c[0].clone(), c[1].clone()].concat());
    assert_eq!(outputs(&mut conn), vec![Output::Ready]);
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(30)));

    let t1 = t0 + Duration::from_secs(20);
    conn.handle_bytes(&s[3], t1);
    assert!(matches!(&outputs(&mut conn)[..], [Output::Event(e)] if e.name() == Some("HEARTBEAT") && e.get("Idle-CPU") == Some("99.300000")));
    assert_eq!(conn.poll_timeout(), Some(t1 + Duration::from_secs(30)));
    conn.handle_timeout(t0 + Duration::from_secs(31));
    assert!(!conn.is_closed(), "the heartbeat refreshed liveness");

    let id = conn.api(api_from_line("status"), t1).unwrap();
    conn.handle_timeout(t1 + Duration::from_secs(30));
    assert_eq!(outputs(&mut conn), vec![Output::Aborted { id }, Output::Closed(CloseReason::LivenessTimeout)]);
}

#[test]
fn a_reply_that_never_comes_closes_the_connection() {
    let t0 = Instant::now();
    let t = transcript("03-api-commands.txt");
    let s = s2c(&t, None);
    let mut cfg = ConnConfig::new("ClueCon", None);
    cfg.request_timeout = Duration::from_secs(5);
    let mut conn = ready(cfg, t0, &s[..2]);
    let a = conn.api(api_from_line("status"), t0).unwrap();
    let b = conn.api(api_from_line("uptime"), t0 + Duration::from_secs(1)).unwrap();
    assert_eq!(conn.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    conn.handle_timeout(t0 + Duration::from_secs(5));
    assert_eq!(outputs(&mut conn), vec![Output::Aborted { id: a }, Output::Aborted { id: b }, Output::Closed(CloseReason::RequestTimeout)]);
}

#[test]
fn server_disconnect_linger_rude_rejection_eof_and_desync() {
    let t0 = Instant::now();
    let t3 = transcript("03-api-commands.txt");
    let s3 = s2c(&t3, None);
    let notice = s3.last().unwrap().clone();

    // disconnect notice while a request is pending
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s3[..2]);
    let id = conn.api(api_from_line("status"), t0).unwrap();
    conn.handle_bytes(&notice, t0);
    let out = outputs(&mut conn);
    assert_eq!(out[0], Output::Aborted { id });
    assert!(matches!(&out[1], Output::Closed(CloseReason::ServerDisconnected(t)) if t.starts_with("Disconnected, goodbye.")));

    // linger notice (outbound transcript) keeps the connection
    let t13 = transcript("13-outbound-socket.txt");
    let linger = s2c(&t13, Some("outbound-8084")).into_iter().find(|m| String::from_utf8_lossy(m).contains("Content-Disposition: linger")).unwrap();
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s3[..2]);
    conn.handle_bytes(&linger, t0);
    assert_eq!(outputs(&mut conn), vec![Output::Linger { linger_time: Some("-1".into()) }]);
    assert!(conn.is_ready());

    // rude rejection: no auth/request at all
    let t20 = transcript("20-acl-rude-rejection.txt");
    let mut conn = Connection::new(ConnConfig::new("ClueCon", None), t0);
    for m in s2c(&t20, None) {
        conn.handle_bytes(&m, t0);
    }
    assert_eq!(outputs(&mut conn), vec![Output::Closed(CloseReason::Rejected("Access Denied, go away.\n".into()))]);
    assert!(conn.poll_transmit().is_none(), "nothing sent to a rejecting server");

    // EOF
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s3[..2]);
    conn.handle_eof(t0);
    assert_eq!(outputs(&mut conn), vec![Output::Closed(CloseReason::Eof)]);

    // a reply nobody asked for, or an api/response where a command/reply was due
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s3[..2]);
    conn.handle_bytes(&s3[1], t0);
    assert!(matches!(&outputs(&mut conn)[..], [Output::Closed(CloseReason::Protocol(_))]));
    let mut conn = ready(ConnConfig::new("ClueCon", None), t0, &s3[..2]);
    conn.exit(t0).unwrap();
    conn.handle_bytes(&s3[2], t0);
    assert!(matches!(outputs(&mut conn).last(), Some(Output::Closed(CloseReason::Protocol(_)))));

    // oversized header block from the server
    let mut cfg = ConnConfig::new("ClueCon", None);
    cfg.limits.max_header_block = 64;
    let mut conn = Connection::new(cfg, t0);
    conn.handle_bytes(format!("Content-Type: auth/request\nX: {}\n\n", "a".repeat(100)).as_bytes(), t0);
    assert!(matches!(&outputs(&mut conn)[..], [Output::Closed(CloseReason::Protocol(m))] if m.contains("header block")));
}
