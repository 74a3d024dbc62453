//! Call flows: the IVR / voicemail / queue brain behind `POST /flow`.
//!
//! - [`wire`]: the /flow request and response types, shared with the edge-agent.
//! - [`definition`]: the flow definition JSON (stored in D1 `flow_versions.definition`)
//!   and its validator.
//! - [`pattern`]: DTMF digit patterns (`1XX`, `[1-3]`, `9.`).
//! - [`run`]: the loop answering the interpreter's lookups through a loader, and signed media URLs.
//! - [`interpreter`]: the sans-IO interpreter: a per-call [`interpreter::Session`] stepped
//!   with outcomes on a virtual clock.
//!
//! The format and protocol are documented in `docs/flows.md`.

pub mod definition;
pub mod interpreter;
pub mod pattern;
pub mod run;
pub mod wire;
