//! callplane — control plane of a cloud PBX / contact-center voice platform.
//!
//! Pure core, thin adapters: every module declared `pub` here is plain Rust
//! (no `worker::`, no clock reads, time is an argument) and is unit-tested
//! natively. The Workers adapters (`handlers`, `durable`, `store`) are only
//! compiled for `wasm32` and do nothing but parse, load, call the core,
//! store and answer.

pub mod acd;
pub mod api;
pub mod body;
pub mod cac;
pub mod error;
pub mod flow;
pub mod media;
pub mod model;
pub mod net;
pub mod presence;
pub mod routing;
pub mod rtjson;
pub mod security;
pub mod sip;
pub mod trace;
pub mod typeid;

#[cfg(test)]
mod testutil;

#[cfg(target_arch = "wasm32")]
mod durable;
#[cfg(target_arch = "wasm32")]
mod handlers;
#[cfg(target_arch = "wasm32")]
mod store;
