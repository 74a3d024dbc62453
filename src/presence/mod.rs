//! Per-account live state held by the account Durable Object: concurrency leases,
//! registrations mirrored from the SIP edge, and digest nonce counts. Pure: the
//! Durable Object loads it, calls these methods with the current time, stores the
//! keys they report as changed, and sets its alarm to [`AccountState::next_deadline`].

use crate::api::{DialogEvent, RegisterEvent};
use crate::cac::lease::{Lease, LeaseSet};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Lease lifetimes: a routed call must be confirmed (answered) within `ring_ttl_ms`,
/// an answered one must end (or be seen live by reconciliation) within `call_ttl_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseTimes {
    pub ring_ttl_ms: u64,
    pub call_ttl_ms: u64,
}

impl Default for LeaseTimes {
    fn default() -> Self {
        LeaseTimes { ring_ttl_ms: 300_000, call_ttl_ms: 4 * 3_600_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub aor: String,
    pub contact: String,
    pub device_id: String,
    /// The device's user (resolved from D1 by the handler; empty in records stored before
    /// the ACD existed): agents are reachable while one of their devices is registered.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user_id: String,
    pub source_ip: String,
    pub source_port: Option<u64>,
    pub user_agent: String,
    pub registered_at_ms: u64,
    pub expires_at_ms: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NonceUse {
    pub nc: u32,
    pub forget_after_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetRecord {
    pub at_ms: u64,
    pub actor: String,
    pub cleared: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountState {
    pub leases: LeaseSet,
    pub registrations: BTreeMap<String, Registration>,
    pub nonces: BTreeMap<String, NonceUse>,
    pub last_reset: Option<ResetRecord>,
}

/// What a dialog event did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DialogEffect {
    /// The lease released by this event (first terminated event only).
    pub released: Option<Lease>,
    pub confirmed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reconciled {
    pub released: Vec<Lease>,
    /// Call-IDs whose leases were extended because the node reports them live.
    pub kept_alive: Vec<String>,
}

pub fn registration_key(aor: &str, contact: &str) -> String {
    format!("{aor}|{contact}")
}

impl AccountState {
    /// Mirror a REGISTER (expires 0 removes that contact). Returns the key touched.
    pub fn register(&mut self, ev: &RegisterEvent, now_ms: u64) -> String {
        let key = registration_key(&ev.aor, &ev.contact);
        match ev.expires.unwrap_or(0) {
            0 => {
                self.registrations.remove(&key);
            }
            secs => {
                let registered_at_ms = self.registrations.get(&key).map_or(now_ms, |r| r.registered_at_ms);
                self.registrations.insert(
                    key.clone(),
                    Registration {
                        aor: ev.aor.clone(),
                        contact: ev.contact.clone(),
                        device_id: ev.device_id.clone(),
                        user_id: ev.user_id.clone(),
                        source_ip: ev.source_ip.clone(),
                        source_port: ev.source_port,
                        user_agent: ev.user_agent.clone(),
                        registered_at_ms,
                        expires_at_ms: now_ms.saturating_add(secs.saturating_mul(1000)),
                    },
                );
            }
        }
        key
    }

    /// Apply a dialog event: `confirmed` extends the lease, `terminated` releases it once.
    pub fn dialog(&mut self, ev: &DialogEvent, now_ms: u64, times: LeaseTimes) -> DialogEffect {
        match ev.state.as_str() {
            "confirmed" => {
                let confirmed = self.leases.confirm(&ev.call_id, now_ms, times.call_ttl_ms);
                if let (true, false) = (confirmed, ev.node.is_empty()) {
                    if let Some(l) = self.leases.leases.get_mut(&ev.call_id) {
                        l.node = Some(ev.node.clone());
                    }
                }
                DialogEffect { released: None, confirmed }
            }
            _ => DialogEffect { released: self.leases.release(&ev.call_id), confirmed: false },
        }
    }

    /// Record (nonce, nc); false when nc is not above the last count seen for that nonce.
    pub fn use_nonce(&mut self, nonce: &str, nc: u32, forget_after_ms: u64) -> bool {
        match self.nonces.get(nonce) {
            Some(u) if nc <= u.nc => false,
            _ => {
                self.nonces.insert(nonce.to_string(), NonceUse { nc, forget_after_ms });
                true
            }
        }
    }

    /// Drop everything whose time has come. Returns (expired leases, removed registration keys, removed nonces).
    pub fn expire(&mut self, now_ms: u64) -> (Vec<Lease>, Vec<String>, Vec<String>) {
        let leases = self.leases.expire(now_ms);
        let regs: Vec<String> = self.registrations.iter().filter(|(_, r)| r.expires_at_ms <= now_ms).map(|(k, _)| k.clone()).collect();
        for k in &regs {
            self.registrations.remove(k);
        }
        let nonces: Vec<String> = self.nonces.iter().filter(|(_, u)| u.forget_after_ms <= now_ms).map(|(k, _)| k.clone()).collect();
        for k in &nonces {
            self.nonces.remove(k);
        }
        (leases, regs, nonces)
    }

    /// Reconcile with the Call-IDs a node reports live: leases not listed (and older than `grace_ms`)
    /// are released; listed ones are live on a media node, so they are confirmed and kept alive for
    /// another call TTL.
    pub fn reconcile(&mut self, node: Option<&str>, live: &[String], now_ms: u64, grace_ms: u64, times: LeaseTimes) -> Reconciled {
        let released = self.leases.reconcile_node(node, live, now_ms, grace_ms);
        let mut kept_alive = Vec::new();
        for id in live {
            if let Some(l) = self.leases.leases.get_mut(id) {
                // Only what this reporter judges; an answered call gets another call TTL, a ringing
                // one another ring TTL (it is not marked answered: its CDR must stay truthful).
                if node.is_none_or(|n| l.node.as_deref() == Some(n)) {
                    let ttl = if l.confirmed { times.call_ttl_ms } else { times.ring_ttl_ms };
                    l.expires_at_ms = l.expires_at_ms.max(now_ms.saturating_add(ttl));
                    kept_alive.push(id.clone());
                }
            }
        }
        Reconciled { released, kept_alive }
    }

    /// Operator reset of the concurrency state.
    pub fn reset(&mut self, actor: &str, now_ms: u64) -> usize {
        let cleared = self.leases.clear();
        self.last_reset = Some(ResetRecord { at_ms: now_ms, actor: actor.to_string(), cleared });
        cleared
    }

    /// When the alarm must next fire.
    pub fn next_deadline(&self) -> Option<u64> {
        let regs = self.registrations.values().map(|r| r.expires_at_ms).min();
        let nonces = self.nonces.values().map(|u| u.forget_after_ms).min();
        [self.leases.next_deadline(), regs, nonces].into_iter().flatten().min()
    }

    /// Whether one of the user's devices has a live registration (ACD reachability).
    pub fn user_reachable(&self, user_id: &str, now_ms: u64) -> bool {
        !user_id.is_empty() && self.registrations.values().any(|r| r.user_id == user_id && r.expires_at_ms > now_ms)
    }

    /// Devices with a live registration.
    pub fn registered_devices(&self, now_ms: u64) -> Vec<&Registration> {
        self.registrations.values().filter(|r| r.expires_at_ms > now_ms).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dialog(call_id: &str, state: &str) -> DialogEvent {
        DialogEvent { call_id: call_id.into(), account_id: "acc_1".into(), state: state.into(), reason: "ended".into(), ..Default::default() }
    }

    #[test]
    fn duplicate_and_two_way_bye_release_once() {
        let mut s = AccountState::default();
        let t = LeaseTimes::default();
        s.leases.take("c1", "outbound", "1001", "+1555", 2, 0, t.ring_ttl_ms);
        assert!(s.dialog(&dialog("c1", "confirmed"), 10, t).confirmed);
        assert!(s.dialog(&dialog("c1", "terminated"), 20, t).released.is_some());
        assert!(s.dialog(&dialog("c1", "terminated"), 21, t).released.is_none());
        assert!(s.dialog(&dialog("c1", "terminated"), 22, t).released.is_none());
        assert_eq!(s.leases.active(), 0);
        assert_eq!(s.leases.counters.released, 1);
    }

    #[test]
    fn confirmed_call_outlives_the_ring_ttl_and_unconfirmed_one_expires() {
        let mut s = AccountState::default();
        let t = LeaseTimes { ring_ttl_ms: 1000, call_ttl_ms: 100_000 };
        s.leases.take("answered", "outbound", "a", "b", 5, 0, t.ring_ttl_ms);
        s.leases.take("ringing", "outbound", "a", "b", 5, 0, t.ring_ttl_ms);
        s.dialog(&dialog("answered", "confirmed"), 500, t);
        assert_eq!(s.next_deadline(), Some(1000));
        let (expired, _, _) = s.expire(1000);
        assert_eq!(expired.iter().map(|l| l.call_id.as_str()).collect::<Vec<_>>(), vec!["ringing"]);
        assert_eq!(s.leases.active(), 1);
        assert_eq!(s.next_deadline(), Some(100_500));
    }

    #[test]
    fn registrations_expire_and_unregister() {
        let mut s = AccountState::default();
        let ev = RegisterEvent { aor: "sip:1001@acme.sip.io".into(), contact: "sip:1001@10.0.0.1:5060".into(), expires: Some(60), device_id: "dev_1".into(), ..Default::default() };
        s.register(&ev, 0);
        assert_eq!(s.registered_devices(59_999).len(), 1);
        s.register(&ev, 30_000);
        assert_eq!(s.registrations.values().next().unwrap().expires_at_ms, 90_000);
        assert_eq!(s.registrations.values().next().unwrap().registered_at_ms, 0);
        s.register(&RegisterEvent { expires: Some(0), ..ev.clone() }, 40_000);
        assert!(s.registrations.is_empty());
        s.register(&ev, 0);
        let (_, regs, _) = s.expire(60_000);
        assert_eq!(regs.len(), 1);
        assert!(s.registered_devices(60_000).is_empty());
    }

    #[test]
    fn nonce_counts_must_increase_and_are_forgotten_after_the_nonce_expires() {
        let mut s = AccountState::default();
        assert!(s.use_nonce("n1", 1, 300));
        assert!(!s.use_nonce("n1", 1, 300));
        assert!(s.use_nonce("n1", 0x10, 300));
        assert!(!s.use_nonce("n1", 0x0f, 300));
        assert!(s.use_nonce("n1", 0x100, 300));
        assert!(s.use_nonce("n2", 1, 300));
        let (_, _, nonces) = s.expire(300);
        assert_eq!(nonces.len(), 2);
    }

    #[test]
    fn reconcile_releases_the_dead_and_keeps_the_live_alive() {
        let mut s = AccountState::default();
        let t = LeaseTimes { ring_ttl_ms: 1_000, call_ttl_ms: 100_000 };
        s.leases.take("live", "outbound", "a", "b", 5, 0, t.ring_ttl_ms);
        s.leases.take("dead", "outbound", "a", "b", 5, 0, t.ring_ttl_ms);
        s.leases.confirm("live", 100, t.call_ttl_ms);
        s.leases.take("ringing", "outbound", "a", "b", 5, 0, t.ring_ttl_ms);
        let r = s.reconcile(None, &["live".to_string(), "ringing".to_string(), "unknown".to_string()], 500, 0, t);
        assert!(!s.leases.leases["ringing"].confirmed, "a live but unanswered call is not marked answered");
        assert_eq!(s.leases.leases["ringing"].expires_at_ms, 1_500);
        s.leases.release("ringing");
        assert_eq!(r.released.iter().map(|l| l.call_id.as_str()).collect::<Vec<_>>(), vec!["dead"]);
        assert_eq!(r.kept_alive, vec!["live".to_string(), "ringing".to_string()]);
        // The live call now outlives its ring TTL: it is on a media node.
        assert!(s.expire(50_000).0.is_empty());
        assert_eq!(s.leases.active(), 1);
        assert_eq!(s.next_deadline(), Some(100_500));
    }

    #[test]
    fn a_confirmed_event_from_a_node_pins_the_lease_to_it() {
        let mut s = AccountState::default();
        let t = LeaseTimes::default();
        s.leases.take("flow-call", "inbound", "a", "b", 5, 0, t.ring_ttl_ms);
        s.leases.take("trunk-call", "outbound", "a", "b", 5, 0, t.ring_ttl_ms);
        s.dialog(&DialogEvent { node: "fs-1".into(), ..dialog("flow-call", "confirmed") }, 10, t);
        s.dialog(&dialog("trunk-call", "confirmed"), 10, t);
        assert_eq!(s.leases.leases["flow-call"].node.as_deref(), Some("fs-1"));
        assert_eq!(s.leases.leases["trunk-call"].node, None);
        // fs-1 reports an empty live list: it releases its call, never the trunk call.
        let r = s.reconcile(Some("fs-1"), &[], 100_000, 0, t);
        assert_eq!(r.released.iter().map(|l| l.call_id.as_str()).collect::<Vec<_>>(), vec!["flow-call"]);
        assert!(s.leases.holds("trunk-call"));
    }

    #[test]
    fn reset_records_who_and_how_many() {
        let mut s = AccountState::default();
        s.leases.take("c1", "outbound", "a", "b", 5, 0, 1000);
        s.leases.take("c2", "outbound", "a", "b", 5, 0, 1000);
        assert_eq!(s.reset("cred_ops", 77), 2);
        assert_eq!(s.last_reset, Some(ResetRecord { at_ms: 77, actor: "cred_ops".into(), cleared: 2 }));
        assert_eq!(s.leases.active(), 0);
    }
}
