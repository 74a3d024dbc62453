//! Event relay seam (issue 5 §4) — not built yet: it posts to Worker endpoints
//! (`/presence/event`, CAC reconciliation, `/security/report`).
//!
//! Planned shape: subscribe to [`crate::client::EslClient::subscribe`]; map channel
//! [`crate::client::ClientEvent::Event`]s to dialog events; on
//! [`crate::client::ClientEvent::Connected`] with `down_for: Some(_)` (a gap: events
//! may have been missed) send a resync snapshot built from `api show channels as json`;
//! a lagged broadcast receiver is a gap too and triggers the same resync.
