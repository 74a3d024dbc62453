//! Test support: fixture loading, a deterministic PRNG, a fake FreeSWITCH event socket
//! that replays byte-exact transcript messages, and a minimal HTTP/1.1 client.
#![allow(dead_code)]

use edge_agent::transcript::{all_transcript_paths, fixtures_dir, Dir, Transcript};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Every wait in these tests is bounded by this.
pub const WAIT: Duration = Duration::from_secs(10);

/// The fixtures directory; panics with a clear message when it is missing.
pub fn fixtures() -> PathBuf {
    let dir = fixtures_dir();
    assert!(
        dir.join("README.md").is_file(),
        "ESL transcript fixtures not found at {} (expected ../shared/fixtures/esl beside the repository; set ESL_FIXTURES to override)",
        dir.display()
    );
    dir
}

pub fn transcript(name: &str) -> Transcript {
    let p = fixtures().join(name);
    Transcript::load(&p).unwrap_or_else(|e| panic!("cannot read transcript {}: {e}", p.display()))
}

pub fn all_transcripts() -> Vec<Transcript> {
    let v: Vec<Transcript> = all_transcript_paths(&fixtures())
        .expect("list fixtures")
        .iter()
        .map(|p| Transcript::load(p).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    assert!(v.len() >= 20, "expected the 22 transcripts, found {}", v.len());
    v
}

/// The S->C payload of a transcript (single-connection part) that contains `needle`.
pub fn s2c_containing(t: &Transcript, needle: &str) -> Vec<u8> {
    t.blocks
        .iter()
        .find(|b| b.dir == Dir::S2C && String::from_utf8_lossy(&b.bytes).contains(needle))
        .unwrap_or_else(|| panic!("{}: no S->C message containing {needle:?}", t.name))
        .bytes
        .clone()
}

/// splitmix64: deterministic, seedable.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// In 1..=max.
    pub fn size(&mut self, max: usize) -> usize {
        1 + (self.next_u64() % max as u64) as usize
    }
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Split `data` into chunks of random sizes in 1..=max.
pub fn chunks(data: &[u8], seed: u64, max: usize) -> Vec<&[u8]> {
    let mut rng = Rng::new(seed);
    let mut v = Vec::new();
    let mut i = 0;
    while i < data.len() {
        let n = rng.size(max).min(data.len() - i);
        v.push(&data[i..i + n]);
        i += n;
    }
    v
}

// ---------------------------------------------------------------- fake ESL server

#[derive(Debug, Clone)]
pub enum Step {
    /// Send these bytes (one or more recorded S->C messages).
    Send(Vec<u8>),
    /// Read one command (up to the blank line) and check it against these bytes.
    /// Normalization: a `Job-UUID:` header the client chose is accepted in place of
    /// the recorded one (or where none was recorded, when FreeSWITCH chose it); the
    /// client's value then replaces the recorded one in every later Send (same
    /// length, so Content-Length values stay right).
    Expect(Vec<u8>),
    Pause(Duration),
    /// Close the TCP connection (FreeSWITCH dropping or finishing it).
    Close,
    /// Keep the connection open, sending nothing, until the client closes it (bounded).
    Hold,
    /// Wait until the test opens the gate (bounded by 60 s: an error if it never does).
    Gate(Arc<tokio::sync::Notify>),
}

#[derive(Debug, Clone, Default)]
pub struct Script(pub Vec<Step>);

impl Script {
    /// One connection of a transcript, replayed as recorded, then closed.
    pub fn replay(t: &Transcript, label: Option<&str>) -> Script {
        let mut v: Vec<Step> = t
            .connection(label)
            .into_iter()
            .map(|b| match b.dir {
                Dir::C2S => Step::Expect(b.bytes.clone()),
                Dir::S2C => Step::Send(b.bytes.clone()),
            })
            .collect();
        v.push(Step::Close);
        Script(v)
    }
    pub fn send(mut self, b: impl AsRef<[u8]>) -> Script {
        self.0.push(Step::Send(b.as_ref().to_vec()));
        self
    }
    pub fn expect(mut self, b: impl AsRef<[u8]>) -> Script {
        self.0.push(Step::Expect(b.as_ref().to_vec()));
        self
    }
    pub fn then(mut self, s: Step) -> Script {
        self.0.push(s);
        self
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Chunking {
    pub seed: u64,
    /// Largest write; 0 = each Send in one write.
    pub max: usize,
}

pub struct FakeEsl {
    pub addr: std::net::SocketAddr,
    /// Every command received, in order, across connections.
    pub received: Arc<Mutex<Vec<String>>>,
    /// Mismatches and failures; a test asserts this is empty.
    pub errors: Arc<Mutex<Vec<String>>>,
    /// Connections accepted so far.
    pub accepted: Arc<Mutex<usize>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeEsl {
    /// Listen on 127.0.0.1, port 0; the n-th accepted connection runs `scripts[n]`.
    /// Connections beyond the scripts are closed at once.
    pub async fn start(scripts: Vec<Script>, chunking: Chunking) -> FakeEsl {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(0usize));
        let (r, e, a) = (received.clone(), errors.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            let mut scripts = scripts.into_iter();
            let mut n = 0u64;
            loop {
                let Ok(Ok((sock, _))) = tokio::time::timeout(Duration::from_secs(30), listener.accept()).await else { return };
                *a.lock().unwrap() += 1;
                n += 1;
                match scripts.next() {
                    Some(s) => run_script(sock, s, Chunking { seed: chunking.seed.wrapping_add(n), ..chunking }, &r, &e).await,
                    None => drop(sock),
                }
            }
        });
        FakeEsl { addr, received, errors, accepted, task }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }
    pub fn received(&self) -> Vec<String> {
        self.received.lock().unwrap().clone()
    }
    pub fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
    pub fn accepted(&self) -> usize {
        *self.accepted.lock().unwrap()
    }
    pub fn assert_clean(&self) {
        let e = self.errors();
        assert!(e.is_empty(), "fake ESL server saw: {e:#?}");
    }
}

impl Drop for FakeEsl {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn read_command(sock: &mut TcpStream, pending: &mut Vec<u8>) -> Option<Vec<u8>> {
    loop {
        if let Some(i) = pending.windows(2).position(|w| w == b"\n\n") {
            let cmd: Vec<u8> = pending.drain(..i + 2).collect();
            return Some(cmd);
        }
        let mut buf = [0u8; 4096];
        match tokio::time::timeout(WAIT, sock.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => pending.extend_from_slice(&buf[..n]),
        }
    }
}

fn job_uuid_of(b: &[u8]) -> Option<String> {
    let s = String::from_utf8_lossy(b);
    s.lines().find_map(|l| l.strip_prefix("Job-UUID: ").map(|v| v.trim().to_string()))
}

fn without_job_header(b: &[u8]) -> Vec<u8> {
    let s = String::from_utf8_lossy(b);
    let kept: Vec<&str> = s.split('\n').filter(|l| !l.starts_with("Job-UUID: ")).collect();
    kept.join("\n").into_bytes()
}

fn replace_all(data: &[u8], from: &str, to: &str) -> Vec<u8> {
    assert_eq!(from.len(), to.len(), "replacement must keep lengths (Content-Length)");
    let (f, t) = (from.as_bytes(), to.as_bytes());
    let mut out = data.to_vec();
    let mut i = 0;
    while i + f.len() <= out.len() {
        if &out[i..i + f.len()] == f {
            out[i..i + f.len()].copy_from_slice(t);
            i += f.len();
        } else {
            i += 1;
        }
    }
    out
}

async fn run_script(mut sock: TcpStream, script: Script, chunking: Chunking, received: &Mutex<Vec<String>>, errors: &Mutex<Vec<String>>) {
    let _ = sock.set_nodelay(true);
    let mut rng = Rng::new(chunking.seed);
    let mut pending = Vec::new();
    let mut map: Vec<(String, String)> = Vec::new(); // recorded uuid -> client uuid
    let mut adopt_next_job: Option<String> = None; // client uuid waiting for the server-chosen one
    let steps = script.0;
    for (idx, step) in steps.iter().cloned().enumerate() {
        match step {
            Step::Send(bytes) => {
                let mut bytes = bytes;
                if let Some(client) = adopt_next_job.take() {
                    match job_uuid_of(&bytes) {
                        Some(recorded) => map.push((recorded, client)),
                        None => adopt_next_job = Some(client),
                    }
                }
                for (from, to) in &map {
                    bytes = replace_all(&bytes, from, to);
                }
                let mut i = 0;
                while i < bytes.len() {
                    let n = if chunking.max == 0 { bytes.len() } else { rng.size(chunking.max).min(bytes.len() - i) };
                    if sock.write_all(&bytes[i..i + n]).await.is_err() {
                        // Fine when the client had nothing more to say (it closed after
                        // an auth failure or rejection); an error if commands were due.
                        if steps[idx + 1..].iter().any(|s| matches!(s, Step::Expect(_))) {
                            errors.lock().unwrap().push("client closed while the server was sending".into());
                        }
                        return;
                    }
                    i += n;
                    if chunking.max != 0 && rng.next_u64() % 4 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            }
            Step::Expect(expected) => {
                let Some(got) = read_command(&mut sock, &mut pending).await else {
                    errors.lock().unwrap().push(format!("expected {:?}, client sent nothing more", String::from_utf8_lossy(&expected)));
                    return;
                };
                received.lock().unwrap().push(String::from_utf8_lossy(&got).into_owned());
                let ok = if got == expected {
                    true
                } else if let Some(client_job) = job_uuid_of(&got) {
                    match job_uuid_of(&expected) {
                        Some(rec) if replace_all(&expected, &rec, &client_job) == got => {
                            map.push((rec, client_job));
                            true
                        }
                        None if without_job_header(&got) == expected => {
                            adopt_next_job = Some(client_job);
                            true
                        }
                        _ => false,
                    }
                } else {
                    false
                };
                if !ok {
                    errors.lock().unwrap().push(format!(
                        "command mismatch:\n expected {:?}\n      got {:?}",
                        String::from_utf8_lossy(&expected),
                        String::from_utf8_lossy(&got)
                    ));
                    return;
                }
            }
            Step::Pause(d) => tokio::time::sleep(d).await,
            Step::Gate(n) => {
                if tokio::time::timeout(Duration::from_secs(60), n.notified()).await.is_err() {
                    errors.lock().unwrap().push("Gate: the test never opened it".into());
                    return;
                }
            }
            Step::Close => {
                let _ = sock.shutdown().await;
                return;
            }
            Step::Hold => {
                let mut buf = [0u8; 1024];
                loop {
                    match tokio::time::timeout(WAIT, sock.read(&mut buf)).await {
                        Ok(Ok(0)) | Ok(Err(_)) => return,
                        Ok(Ok(n)) => pending.extend_from_slice(&buf[..n]),
                        Err(_) => {
                            errors.lock().unwrap().push("Hold: client never closed".into());
                            return;
                        }
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------- HTTP client

pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("response is not JSON ({e}): {:?}", self.body))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request on a fresh connection (`Connection: close`), bounded in time.
pub async fn http(addr: std::net::SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> HttpResponse {
    let fut = async {
        let mut s = TcpStream::connect(addr).await.expect("connect to REST server");
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Length: {}\r\n", body.len());
        if !body.is_empty() {
            req.push_str("Content-Type: application/json\r\n");
        }
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        s.write_all(req.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.unwrap();
        out
    };
    let raw = tokio::time::timeout(WAIT, fut).await.expect("HTTP request timed out");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP head");
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next().unwrap().split_whitespace().nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let chunked = headers.iter().any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_string() };
    HttpResponse { status, headers, body }
}

fn dechunk(mut s: &str) -> String {
    let mut out = String::new();
    loop {
        let Some((size, rest)) = s.split_once("\r\n") else { break };
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        s = &rest[n + 2..];
    }
    out
}
