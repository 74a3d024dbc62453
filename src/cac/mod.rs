//! Call admission control: concurrency as a set of leases keyed by Call-ID.
pub mod lease;
