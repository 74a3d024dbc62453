//! Flow runner seam (issue 5 §3) — not built yet: it needs the Worker's `/flow`
//! endpoint and wire types, which do not exist yet.
//!
//! Planned shape: FreeSWITCH hands a call to the agent through an outbound socket
//! (`socket 127.0.0.1:<port> async full`). The runner accepts it, sends `connect`
//! (the reply's channel data is a URL-encoded header block: decode it with
//! [`crate::esl::event::parse_plain`]), then loops: step `/flow` with the
//! X-Account-Id / X-Flow-Id values and an increasing seq, execute each command with
//! `sendmsg` ([`crate::esl::Command::sendmsg`], which refuses control characters),
//! turn CHANNEL_EXECUTE_COMPLETE and friends into outcomes, retry idempotently on
//! network errors, and report the final hangup. The framing, event decoding and
//! linger/disconnect handling it needs are in [`crate::esl`] and tested against the
//! outbound transcripts (13, 13b, 13c).
