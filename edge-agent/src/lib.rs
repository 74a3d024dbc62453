//! callplane edge-agent: the native daemon on each FreeSWITCH media node.
//!
//! * [`esl`]: the Event Socket protocol, sans-IO (framing, events, validated
//!   commands, connection state machine, reconnect schedule).
//! * [`client`]: the tokio adapter: one persistent inbound connection, reconnects.
//! * [`rest`]: call-control REST API compatible with fs-api.
//! * [`config`]: configuration from the environment.
//! * [`flow`], [`relay`]: seams for the flow runner and event relays (issue 5 §3, §4),
//!   not built yet: they need the Worker's `/flow` endpoint.
//! * [`transcript`]: reader for the ESL transcript fixtures (tests, bench).

pub mod client;
pub mod config;
pub mod esl;
pub mod flow;
pub mod relay;
pub mod rest;
pub mod transcript;
