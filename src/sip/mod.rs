//! SIP digest authentication (RFC 2617 / 7616 / 8760) and the /auth decision.
pub mod auth;
pub mod digest;
pub mod nonce;
