//! The tokio ESL client against the fake server replaying transcripts over TCP
//! (127.0.0.1, random chunking): auth, api, bgapi, heartbeat, disconnect, rejection,
//! reconnect with backoff + jitter and re-subscription.

mod support;

use edge_agent::client::{ClientConfig, ClientError, ClientEvent, EslClient, LinkStatus};
use edge_agent::esl::backoff::BackoffConfig;
use edge_agent::esl::{ApiCommand, ConnConfig, EventFormat, Reply, Subscription, Uuid};
use std::time::Duration;
use support::*;

fn config(port: u16, password: &str, sub: Option<Subscription>) -> ClientConfig {
    ClientConfig {
        host: "127.0.0.1".into(),
        port,
        conn: ConnConfig::new(password, sub),
        connect_timeout: Duration::from_secs(2),
        backoff: BackoffConfig { initial: Duration::from_millis(40), max: Duration::from_millis(200) },
    }
}

fn line(l: &str) -> ApiCommand {
    let mut it = l.split(' ');
    let mut c = ApiCommand::new(it.next().unwrap()).unwrap();
    for w in it {
        c = c.arg(w, "arg").unwrap();
    }
    c
}

async fn next_matching<F: Fn(&ClientEvent) -> bool>(rx: &mut tokio::sync::broadcast::Receiver<ClientEvent>, f: F) -> ClientEvent {
    tokio::time::timeout(WAIT, async {
        loop {
            let e = rx.recv().await.expect("event stream");
            if f(&e) {
                return e;
            }
        }
    })
    .await
    .expect("event did not arrive in time")
}

async fn wait_received(fake: &FakeEsl, n: usize) {
    tokio::time::timeout(WAIT, async {
        while fake.received().len() < n {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("server did not receive the commands in time");
}

#[tokio::test]
async fn replays_api_commands_transcript_byte_exact() {
    let t = transcript("03-api-commands.txt");
    let fake = FakeEsl::start(vec![Script::replay(&t, None)], Chunking { seed: 3, max: 7 }).await;
    let client = EslClient::start(config(fake.port(), "ClueCon", None), Box::new(|| 0.5));
    assert!(client.wait_ready(WAIT).await, "not ready: {:?} {:?}", client.status(), fake.errors());

    let lines: Vec<String> = t
        .blocks
        .iter()
        .filter(|b| b.dir == edge_agent::transcript::Dir::C2S)
        .map(|b| String::from_utf8_lossy(&b.bytes).trim_end().to_string())
        .filter_map(|l| l.strip_prefix("api ").map(str::to_string))
        .collect();
    let mut replies = Vec::new();
    for l in &lines {
        replies.push(client.api(line(l)).await.unwrap_or_else(|e| panic!("{l}: {e} {:?}", fake.errors())));
    }
    assert_eq!(replies[0].text().lines().next(), Some("UP 0 years, 0 days, 0 hours, 5 minutes, 26 seconds, 14 milliseconds, 207 microseconds"));
    assert_eq!(replies[8], Reply::Api("-ERR No such channel!\n".into()));
    assert_eq!(replies[9], Reply::Api("-USAGE: <uuid> [cause]\n".into()));
    assert_eq!(replies[16], Reply::Api("false".into()));

    // bgapi status: recorded without a Job-UUID header (FreeSWITCH chose it); the job
    // result never arrives in this transcript, so the exit that follows aborts it.
    let c2 = client.clone();
    let job = tokio::spawn(async move { c2.bgapi(line("status"), Uuid::new_v4(), Duration::from_secs(5)).await });
    wait_received(&fake, 1 + lines.len() + 1).await;
    client.shutdown(WAIT).await;
    assert_eq!(tokio::time::timeout(WAIT, job).await.unwrap().unwrap(), Err(ClientError::ConnectionLost));
    assert_eq!(client.status(), LinkStatus::Stopped);
    fake.assert_clean();
    assert_eq!(fake.received().last().map(String::as_str), Some("exit\n\n"));
}

#[tokio::test]
async fn bgapi_results_and_originate_errors() {
    let t = transcript("16-originate-errors-and-bgapi-jobuuid.txt");
    let fake = FakeEsl::start(vec![Script::replay(&t, None)], Chunking { seed: 16, max: 5 }).await;
    let sub = Subscription::new(EventFormat::Json, &["BACKGROUND_JOB"]).unwrap();
    let client = EslClient::start(config(fake.port(), "ClueCon", Some(sub)), Box::new(|| 0.5));
    assert!(client.wait_ready(WAIT).await, "{:?}", fake.errors());
    let to = Duration::from_secs(5);
    assert_eq!(client.api(line("originate loopback/8888/default &park()")).await.unwrap().text(), "-ERR NORMAL_CLEARING\n");
    assert_eq!(client.api(line("originate error/USER_BUSY &park()")).await.unwrap().text(), "-ERR USER_BUSY\n");
    // recorded without Job-UUID: the fake maps FreeSWITCH's choice to ours
    let body = client.bgapi(line("originate error/CALL_REJECTED &park()"), Uuid::new_v4(), to).await.unwrap();
    assert_eq!(body, "-ERR CALL_REJECTED\n");
    // recorded with the client-chosen Job-UUID: byte-exact
    let job = Uuid::parse("11111111-2222-3333-4444-555555555555").unwrap();
    let body = client.bgapi(line("status"), job, to).await.unwrap();
    assert!(body.starts_with("UP 0 years, 0 days, 0 hours, 6 minutes"), "{body}");
    let body = client.bgapi(line("no_such_command arg"), Uuid::new_v4(), to).await.unwrap();
    assert_eq!(body, "-ERR no_such_command Command not found!\n");
    assert!(client.api(line("originate")).await.unwrap().text().starts_with("-USAGE: <call url>"));
    client.shutdown(WAIT).await;
    fake.assert_clean();
    assert_eq!(fake.received()[5], "bgapi status\nJob-UUID: 11111111-2222-3333-4444-555555555555\n\n");
}

#[tokio::test]
async fn heartbeat_events_are_delivered() {
    let t = transcript("17-heartbeat-plain.txt");
    let fake = FakeEsl::start(vec![Script::replay(&t, None)], Chunking { seed: 17, max: 1 }).await;
    let sub = Subscription::new(EventFormat::Plain, &["HEARTBEAT"]).unwrap();
    let client = EslClient::start(config(fake.port(), "ClueCon", Some(sub)), Box::new(|| 0.5));
    let mut rx = client.subscribe();
    let ev = next_matching(&mut rx, |e| matches!(e, ClientEvent::Event(_))).await;
    let ClientEvent::Event(ev) = ev else { unreachable!() };
    assert_eq!(ev.name(), Some("HEARTBEAT"));
    assert_eq!(ev.get("Event-Info"), Some("System Ready"));
    client.shutdown(WAIT).await;
    fake.assert_clean();
}

#[tokio::test]
async fn wrong_password_and_rude_rejection_are_reported_and_retried() {
    let t2 = transcript("02-auth-fail.txt");
    let t20 = transcript("20-acl-rude-rejection.txt");
    let fake = FakeEsl::start(
        vec![Script::replay(&t2, Some("conn1")), Script::replay(&t20, None)],
        Chunking { seed: 2, max: 3 },
    )
    .await;
    let client = EslClient::start(config(fake.port(), "WrongPassword", None), Box::new(|| 0.0));
    let mut rx = client.subscribe();
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Retrying { .. })).await;
    let ClientEvent::Retrying { attempt, delay, error } = e else { unreachable!() };
    assert_eq!((attempt, delay), (1, Duration::from_millis(20)));
    assert_eq!(error, "authentication failed: -ERR invalid");
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Retrying { .. })).await;
    let ClientEvent::Retrying { attempt, delay, error } = e else { unreachable!() };
    assert_eq!((attempt, delay), (2, Duration::from_millis(40)), "exponential: never reached Ready, no reset");
    assert_eq!(error, "rejected by FreeSWITCH: Access Denied, go away.");
    assert_eq!(client.api(line("status")).await, Err(ClientError::NotConnected));
    client.shutdown(WAIT).await;
    fake.assert_clean();
}

fn handshake(sub: &str) -> Script {
    let t16 = transcript("16-originate-errors-and-bgapi-jobuuid.txt");
    let t3 = transcript("03-api-commands.txt");
    Script::default()
        .send(s2c_containing(&t3, "auth/request"))
        .expect("auth ClueCon\n\n")
        .send(s2c_containing(&t3, "+OK accepted"))
        .expect(format!("{sub}\n\n"))
        .send(s2c_containing(&t16, "+OK event listener enabled json"))
}

#[tokio::test]
async fn reconnects_with_backoff_and_resubscribes_after_the_server_drops() {
    let t3 = transcript("03-api-commands.txt");
    let sub_line = "event json BACKGROUND_JOB CHANNEL_CREATE";
    let first = handshake(sub_line).then(Step::Close); // FreeSWITCH restarts
    let second = handshake(sub_line).expect("api uptime\n\n").send(s2c_containing(&t3, "326")).then(Step::Hold);
    let fake = FakeEsl::start(vec![first, second], Chunking { seed: 5, max: 4 }).await;
    let sub = Subscription::new(EventFormat::Json, &["BACKGROUND_JOB", "CHANNEL_CREATE"]).unwrap();
    let client = EslClient::start(config(fake.port(), "ClueCon", Some(sub)), Box::new(|| 0.5));
    let mut rx = client.subscribe();
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Connected { .. })).await;
    assert!(matches!(e, ClientEvent::Connected { generation: 1, down_for: None }));
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Disconnected { .. })).await;
    assert!(matches!(&e, ClientEvent::Disconnected { generation: 1, reason } if reason == "connection closed by peer"), "{e:?}");
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Retrying { .. })).await;
    // 40 ms initial step, equal jitter with j=0.5: 20 + 10 ms
    assert!(matches!(e, ClientEvent::Retrying { attempt: 1, delay, .. } if delay == Duration::from_millis(30)), "{e:?}");
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Connected { .. })).await;
    let ClientEvent::Connected { generation, down_for } = e else { unreachable!() };
    assert_eq!(generation, 2);
    assert!(down_for.unwrap() >= Duration::from_millis(30), "the gap is reported: {down_for:?}");
    assert_eq!(client.api(line("uptime")).await.unwrap(), Reply::Api("326\n".into()));
    let subs = fake.received().iter().filter(|c| c.starts_with("event json")).count();
    assert_eq!(subs, 2, "re-subscribed on the new connection: {:?}", fake.received());
    client.shutdown(Duration::from_millis(200)).await;
    fake.assert_clean();
}

#[tokio::test]
async fn silence_beyond_the_liveness_timeout_reconnects() {
    let sub_line = "event json BACKGROUND_JOB";
    let t3 = transcript("03-api-commands.txt");
    let first = handshake(sub_line).then(Step::Hold); // a hung switch: TCP open, nothing sent
    let second = handshake(sub_line).expect("api uptime\n\n").send(s2c_containing(&t3, "326")).then(Step::Hold);
    let fake = FakeEsl::start(vec![first, second], Chunking { seed: 6, max: 0 }).await;
    let sub = Subscription::new(EventFormat::Json, &["BACKGROUND_JOB"]).unwrap();
    let mut cfg = config(fake.port(), "ClueCon", Some(sub));
    cfg.conn.liveness_timeout = Duration::from_millis(300);
    let client = EslClient::start(cfg, Box::new(|| 0.0));
    let mut rx = client.subscribe();
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Disconnected { .. })).await;
    assert!(matches!(&e, ClientEvent::Disconnected { reason, .. } if reason.contains("liveness")), "{e:?}");
    next_matching(&mut rx, |e| matches!(e, ClientEvent::Connected { generation: 2, .. })).await;
    assert_eq!(client.api(line("uptime")).await.unwrap().text(), "326\n");
    assert_eq!(fake.accepted(), 2);
    client.shutdown(Duration::from_millis(200)).await;
    fake.assert_clean();
}

#[tokio::test]
async fn requests_fail_fast_while_freeswitch_is_down() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let client = EslClient::start(config(port, "ClueCon", None), Box::new(|| 0.0));
    let mut rx = client.subscribe();
    let e = next_matching(&mut rx, |e| matches!(e, ClientEvent::Retrying { .. })).await;
    assert!(matches!(&e, ClientEvent::Retrying { error, .. } if error.contains("connect to 127.0.0.1")), "{e:?}");
    let started = std::time::Instant::now();
    assert_eq!(client.api(line("status")).await, Err(ClientError::NotConnected));
    assert!(started.elapsed() < Duration::from_secs(1));
    client.shutdown(Duration::from_millis(200)).await;
}
