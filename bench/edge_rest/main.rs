//! REST → ESL round trip vs a raw ESL `api` round trip, on the same fake FreeSWITCH.
//!
//!     cargo bench -p edge-agent --bench edge_rest              (release build)
//!     EDGE_BENCH_SECS=4 cargo bench -p edge-agent --bench edge_rest
//!
//! One in-process fake event socket (127.0.0.1, port 0) answers the recorded
//! handshake of transcript 04 and every `api ...` command with the recorded
//! `uuid_kill` answer (`api/response`, `+OK\n`). Through the same `EslClient`:
//!
//! * raw:  `api uuid_kill <uuid>` → reply (the client's request/reply path);
//! * REST: `POST /v1/calls/<uuid>/hangup` on the agent's REST API (axum, HTTP/1.1
//!   keep-alive, our own client) → the same ESL command → 200 JSON.
//!
//! Sequential (one request at a time: latency-bound) and 8 in parallel. Prints
//! requests/s for both and REST/raw from the same run: the ratio is the cost of the
//! HTTP layer (parse, route, validate, JSON) on top of the ESL round trip.

use edge_agent::client::{ClientConfig, EslClient};
use edge_agent::esl::backoff::BackoffConfig;
use edge_agent::esl::{ApiCommand, ConnConfig, EventFormat, Subscription, Uuid};
use edge_agent::http::{Endpoint, HttpClient};
use edge_agent::rest::{router, AppState};
use edge_agent::transcript::{fixtures_dir, Dir, Transcript};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const UUID: &str = "ba910242-9276-4c0b-b6d2-3a32edec8e71";

fn recorded(t: &Transcript, needle: &str) -> Vec<u8> {
    t.blocks
        .iter()
        .find(|b| b.dir == Dir::S2C && String::from_utf8_lossy(&b.bytes).contains(needle))
        .unwrap_or_else(|| panic!("{}: no message containing {needle:?}", t.name))
        .bytes
        .clone()
}

/// Fake FreeSWITCH: recorded handshake, then the recorded `+OK` for every command.
async fn fake_esl(t: &Transcript) -> u16 {
    let auth_req = recorded(t, "auth/request");
    let accepted = recorded(t, "+OK accepted");
    let subscribed = recorded(t, "+OK event listener enabled json");
    let ok = recorded(t, "Content-Length: 4\n\n+OK\n");
    assert_eq!(ok, b"Content-Type: api/response\nContent-Length: 4\n\n+OK\n");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let (auth_req, accepted, subscribed, ok) = (auth_req.clone(), accepted.clone(), subscribed.clone(), ok.clone());
            tokio::spawn(async move {
                let _ = s.set_nodelay(true);
                if s.write_all(&auth_req).await.is_err() {
                    return;
                }
                let mut pending: Vec<u8> = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    let mut out = Vec::new();
                    while let Some(i) = pending.windows(2).position(|w| w == b"\n\n") {
                        let cmd: Vec<u8> = pending.drain(..i + 2).collect();
                        if cmd.starts_with(b"auth ") {
                            out.extend_from_slice(&accepted);
                        } else if cmd.starts_with(b"event ") {
                            out.extend_from_slice(&subscribed);
                        } else if cmd.starts_with(b"api ") {
                            out.extend_from_slice(&ok);
                        } else {
                            return;
                        }
                    }
                    if !out.is_empty() && s.write_all(&out).await.is_err() {
                        return;
                    }
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                    }
                }
            });
        }
    });
    port
}

/// Requests/s of `parallel` loops of `esl.api(cmd)` for `secs`.
async fn raw_rate(esl: &EslClient, cmd: &ApiCommand, secs: f64, parallel: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..parallel)
        .map(|_| {
            let (esl, cmd, done) = (esl.clone(), cmd.clone(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = esl.api(cmd.clone()).await.expect("ESL reply");
                    assert_eq!(r.text(), "+OK\n");
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// Requests/s of `parallel` keep-alive clients POSTing `path` for `secs`.
async fn rest_rate(ep: &Endpoint, path: &str, secs: f64, parallel: usize) -> f64 {
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let start = Instant::now();
    let tasks: Vec<_> = (0..parallel)
        .map(|_| {
            let (mut client, path, done) = (HttpClient::new(ep.clone(), None, Duration::from_secs(5)), path.to_string(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < deadline {
                    let r = client.post_json(&path, "{}").await.expect("REST reply");
                    assert_eq!(r.status, 200);
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let secs: f64 = std::env::var("EDGE_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let t = Transcript::load(&fixtures_dir().join("04-originate-event-json-ALL.txt")).unwrap_or_else(|e| panic!("ESL fixtures missing: {e}"));
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async move {
        let port = fake_esl(&t).await;
        let esl = EslClient::start(
            ClientConfig {
                host: "127.0.0.1".into(),
                port,
                conn: ConnConfig::new("ClueCon", Some(Subscription::new(EventFormat::Json, &["BACKGROUND_JOB"]).unwrap())),
                connect_timeout: Duration::from_secs(2),
                backoff: BackoffConfig::default(),
            },
            Box::new(|| 0.5),
        );
        assert!(esl.wait_ready(Duration::from_secs(5)).await, "fake ESL not ready");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let rest = listener.local_addr().unwrap();
        let app = router(AppState::new(esl.clone(), None));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        // Sanity: both paths answer what a hangup answers.
        let uuid = Uuid::parse(UUID).unwrap();
        let cmd = ApiCommand::new("uuid_kill").unwrap().uuid(&uuid);
        assert_eq!(esl.api(cmd.clone()).await.unwrap().text(), "+OK\n");
        let ep = Endpoint::parse(&format!("http://{rest}")).unwrap();
        let path = format!("/v1/calls/{UUID}/hangup");
        let r = HttpClient::new(ep.clone(), None, Duration::from_secs(5)).post_json(&path, "{}").await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());

        println!("edge_rest: fake ESL 127.0.0.1:{port}, REST {rest}, {:.1} s per measurement, 2 runtime threads", secs / 4.0);
        for parallel in [1usize, 8] {
            // Warm-up, then raw and REST back to back.
            raw_rate(&esl, &cmd, 0.1, parallel).await;
            rest_rate(&ep, &path, 0.1, parallel).await;
            let raw = raw_rate(&esl, &cmd, secs / 4.0, parallel).await;
            let via_rest = rest_rate(&ep, &path, secs / 4.0, parallel).await;
            println!("{parallel} in flight: raw ESL api {raw:>8.0} req/s   REST->ESL {via_rest:>8.0} req/s   REST/raw {:.2}", via_rest / raw);
        }
        esl.shutdown(Duration::from_secs(1)).await;
    });
}
