//! ESL parsing throughput over the FreeSWITCH 1.10.12 transcripts.
//!
//!     cargo bench -p edge-agent --bench esl_parse            (release build)
//!     ESL_BENCH_SECS=5 cargo bench -p edge-agent --bench esl_parse
//!
//! Frames every S->C stream of every transcript (683 messages, 412 events, ~1.3 MB)
//! fed in 1500-byte chunks (a TCP segment) and in 64 KiB reads, and decodes every
//! event (plain/json/xml). Prints messages/s, events/s and MB/s for each mode in one
//! run, so the ratio between modes is meaningful on any machine. Bounded in time.

use edge_agent::esl::{parse_event, Parser};
use edge_agent::transcript::{all_transcript_paths, fixtures_dir, Dir, Transcript};
use std::time::{Duration, Instant};

fn main() {
    let dir = fixtures_dir();
    let paths = all_transcript_paths(&dir).unwrap_or_else(|e| panic!("ESL fixtures missing: {e}"));
    let mut streams = Vec::new();
    for p in &paths {
        let t = Transcript::load(p).expect("transcript");
        for l in t.labels() {
            let s = t.stream(l.as_deref(), Dir::S2C);
            if !s.is_empty() {
                streams.push(s);
            }
        }
    }
    let bytes: usize = streams.iter().map(Vec::len).sum();
    let secs: f64 = std::env::var("ESL_BENCH_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(2.0);
    println!("esl_parse: {} transcripts, {} streams, {} bytes", paths.len(), streams.len(), bytes);
    for (name, chunk, decode) in [
        ("frame only, 1500 B chunks", 1500, false),
        ("frame only, 64 KiB reads", 65536, false),
        ("frame + decode events, 1500 B chunks", 1500, true),
        ("frame + decode events, 64 KiB reads", 65536, true),
    ] {
        let (mut msgs, mut events, mut rounds) = (0u64, 0u64, 0u64);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs_f64(secs / 4.0) {
            for s in &streams {
                let mut p = Parser::default();
                for c in s.chunks(chunk) {
                    p.feed(c);
                    while let Some(m) = p.next().expect("parse") {
                        msgs += 1;
                        if m.kind().is_event() {
                            events += 1;
                            if decode {
                                std::hint::black_box(parse_event(&m).expect("event"));
                            }
                        }
                    }
                }
            }
            rounds += 1;
        }
        let el = start.elapsed().as_secs_f64();
        println!(
            "{name:40} {:>10.0} msg/s {:>10.0} events/s {:>8.1} MB/s ({rounds} rounds)",
            msgs as f64 / el,
            events as f64 / el,
            (bytes as f64 * rounds as f64) / el / 1e6
        );
    }
}
