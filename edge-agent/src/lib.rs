//! callplane edge-agent: the native daemon on each FreeSWITCH media node.
//!
//! * [`esl`]: the Event Socket protocol, sans-IO (framing, events, validated
//!   commands, connection state machine, reconnect schedule).
//! * [`client`]: the tokio adapter: one persistent inbound connection, reconnects.
//! * [`rest`]: call-control REST API compatible with fs-api.
//! * [`config`]: configuration from the environment.
//! * [`relay`]: channel events → dialog events, CAC reconciliation and ban
//!   snapshots to callplane (issue 5 §4), over [`http`], a minimal HTTP/1.1 client.
//! * [`flow`]: the flow runner (issue 5 §3): FreeSWITCH's outbound socket → callplane's
//!   `/flow`, reusing the Worker's wire types (`callplane::flow::wire`).
//! * [`transcript`]: reader for the ESL transcript fixtures (tests, bench).

pub mod client;
pub mod config;
pub mod esl;
pub mod flow;
pub mod http;
pub mod relay;
pub mod rest;
pub mod transcript;
