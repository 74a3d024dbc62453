//! Security decisions: failed-digest tracking that drives automatic bans.
pub mod failures;
