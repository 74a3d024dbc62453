//! The lease set: concurrency as leases keyed by Call-ID, never a bare counter.
//! OWNER: helper "routing-core". Interface below is fixed; fill in the bodies.
//!
//! Why leases: a counter drifts (a BYE seen twice, a BYE never seen, a node restart) and a
//! drifted counter either blocks calls forever or admits too many. Here the count *is* the
//! number of leases, each keyed by its Call-ID, so by construction:
//! - a Call-ID holds at most one slot (a retransmitted or re-routed INVITE gets `AlreadyHeld`);
//! - a lease leaves the set exactly once, through exactly one of `release`, `expire`,
//!   `reconcile` or `clear`, and only the path that removed it counts it; so with `cleared` the
//!   sum of what `clear` returned, `taken - released - expired - reconciled - cleared == active()`;
//! - every lease has a deadline (`expires_at_ms`), so a lost BYE costs at most one TTL.
//!
//! Times are Unix epoch milliseconds passed in by the caller; arithmetic saturates.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Lease {
    // Aliases: leases stored before the API went camelCase still load.
    #[serde(alias = "call_id")]
    pub call_id: String,
    #[serde(alias = "taken_at_ms")]
    pub taken_at_ms: u64,
    #[serde(alias = "expires_at_ms")]
    pub expires_at_ms: u64,
    /// The dialog was confirmed (answered); TTL was extended.
    pub confirmed: bool,
    pub direction: String,
    pub from: String,
    pub to: String,
    /// The media node the call is live on, once a node reported it (pinned by a `confirmed`
    /// dialog event that names the node). A node's reconciliation only judges its own leases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TakeOutcome {
    Taken,
    /// The same Call-ID already holds a lease (retransmission / re-route): no second slot.
    AlreadyHeld,
    AtLimit,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Counters {
    pub taken: u64,
    pub released: u64,
    pub expired: u64,
    pub reconciled: u64,
    pub rejected: u64,
    /// Leases dropped by an operator reset.
    #[serde(default)]
    pub cleared: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeaseSet {
    pub leases: BTreeMap<String, Lease>,
    pub counters: Counters,
}

impl LeaseSet {
    /// Take a slot for `call_id` if fewer than `limit` leases are active; the lease expires at now+ttl.
    ///
    /// A Call-ID that already holds a lease gets `AlreadyHeld` and nothing changes (checked first,
    /// so a retransmitted INVITE of an admitted call is never rejected, even at the limit).
    /// `limit` 0 admits nothing. Counters: `taken` on `Taken`, `rejected` on `AtLimit`, nothing
    /// on `AlreadyHeld`.
    #[allow(clippy::too_many_arguments)]
    pub fn take(&mut self, call_id: &str, direction: &str, from: &str, to: &str, limit: u32, now_ms: u64, ttl_ms: u64) -> TakeOutcome {
        match self.peek(call_id, limit) {
            TakeOutcome::Taken => {}
            TakeOutcome::AlreadyHeld => return TakeOutcome::AlreadyHeld,
            TakeOutcome::AtLimit => {
                self.counters.rejected += 1;
                return TakeOutcome::AtLimit;
            }
        }
        let expires_at_ms = now_ms.saturating_add(ttl_ms);
        self.leases.insert(
            call_id.to_string(),
            Lease {
                call_id: call_id.to_string(),
                taken_at_ms: now_ms,
                expires_at_ms,
                confirmed: false,
                direction: direction.to_string(),
                from: from.to_string(),
                to: to.to_string(),
                node: None,
            },
        );
        self.counters.taken += 1;
        TakeOutcome::Taken
    }
    /// Mark confirmed and push expiry to now+ttl. False if no such lease.
    ///
    /// Also the refresh for a long call (session timer, periodic keep-alive): the deadline is
    /// set to exactly now+ttl.
    pub fn confirm(&mut self, call_id: &str, now_ms: u64, ttl_ms: u64) -> bool {
        match self.leases.get_mut(call_id) {
            Some(lease) => {
                lease.confirmed = true;
                lease.expires_at_ms = now_ms.saturating_add(ttl_ms);
                true
            }
            None => false,
        }
    }
    /// Release idempotently: Some(lease) the first time, None after.
    pub fn release(&mut self, call_id: &str) -> Option<Lease> {
        let lease = self.leases.remove(call_id)?;
        self.counters.released += 1;
        Some(lease)
    }
    /// Drop leases whose expiry is <= now; returns them.
    pub fn expire(&mut self, now_ms: u64) -> Vec<Lease> {
        let dropped = self.remove_where(|l| l.expires_at_ms <= now_ms);
        self.counters.expired += dropped.len() as u64;
        dropped
    }
    /// Keep only leases whose Call-ID is in `live`, except those taken less than `grace_ms` ago
    /// (just routed, not yet on the node). Returns the released ones.
    ///
    /// A lease "taken in the future" (clock skew between callers) counts as just taken.
    pub fn reconcile(&mut self, live: &[String], now_ms: u64, grace_ms: u64) -> Vec<Lease> {
        self.reconcile_node(None, live, now_ms, grace_ms)
    }

    /// [`reconcile`](Self::reconcile) as reported by one source: `None` (the SIP edge, which
    /// sees every call) judges every lease; `Some(node)` (a media node) judges only the leases
    /// pinned to that node — calls on other nodes or on trunks are not its to release.
    pub fn reconcile_node(&mut self, node: Option<&str>, live: &[String], now_ms: u64, grace_ms: u64) -> Vec<Lease> {
        let live: std::collections::BTreeSet<&str> = live.iter().map(String::as_str).collect();
        let dropped = self.remove_where(|l| {
            node.is_none_or(|n| l.node.as_deref() == Some(n)) && !live.contains(l.call_id.as_str()) && now_ms.saturating_sub(l.taken_at_ms) >= grace_ms
        });
        self.counters.reconciled += dropped.len() as u64;
        dropped
    }
    /// Remove everything (operator reset); returns how many were dropped, also added to
    /// `counters.cleared`.
    pub fn clear(&mut self) -> usize {
        let n = self.leases.len();
        self.leases.clear();
        self.counters.cleared += n as u64;
        n
    }
    pub fn active(&self) -> usize {
        self.leases.len()
    }
    /// Earliest expiry, for the Durable Object alarm.
    pub fn next_deadline(&self) -> Option<u64> {
        self.leases.values().map(|l| l.expires_at_ms).min()
    }
    /// What `take` would answer, without changing anything (dry-run admission, `/route?explain`).
    pub fn peek(&self, call_id: &str, limit: u32) -> TakeOutcome {
        if self.leases.contains_key(call_id) {
            TakeOutcome::AlreadyHeld
        } else if self.leases.len() >= limit as usize {
            TakeOutcome::AtLimit
        } else {
            TakeOutcome::Taken
        }
    }
    /// Whether `call_id` holds a lease.
    pub fn holds(&self, call_id: &str) -> bool {
        self.leases.contains_key(call_id)
    }

    /// Remove and return (in Call-ID order) the leases matching `pred`.
    fn remove_where(&mut self, mut pred: impl FnMut(&Lease) -> bool) -> Vec<Lease> {
        let ids: Vec<String> = self.leases.iter().filter(|(_, l)| pred(l)).map(|(id, _)| id.clone()).collect();
        ids.into_iter().filter_map(|id| self.leases.remove(&id)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: u64 = 60_000;

    fn take(set: &mut LeaseSet, id: &str, limit: u32, now: u64) -> TakeOutcome {
        set.take(id, "inbound", "+12125550100", "+12125550123", limit, now, TTL)
    }

    #[test]
    fn take_records_the_call() {
        let mut s = LeaseSet::default();
        assert_eq!(s.take("a@pbx", "outbound", "1001", "+442079460000", 2, 1_000, 30_000), TakeOutcome::Taken);
        let l = &s.leases["a@pbx"];
        assert_eq!(
            l,
            &Lease {
                call_id: "a@pbx".into(),
                taken_at_ms: 1_000,
                expires_at_ms: 31_000,
                confirmed: false,
                direction: "outbound".into(),
                from: "1001".into(),
                to: "+442079460000".into(),
                node: None,
            }
        );
        assert_eq!(s.active(), 1);
        assert!(s.holds("a@pbx"));
        assert_eq!(s.counters, Counters { taken: 1, ..Counters::default() });
        assert_eq!(s.next_deadline(), Some(31_000));
    }

    #[test]
    fn limit_exactly_reached_and_zero_limit() {
        let mut s = LeaseSet::default();
        for i in 0..3 {
            assert_eq!(take(&mut s, &format!("c{i}"), 3, 0), TakeOutcome::Taken);
        }
        assert_eq!(s.active(), 3);
        assert_eq!(s.peek("c3", 3), TakeOutcome::AtLimit);
        assert_eq!(s.peek("c2", 3), TakeOutcome::AlreadyHeld);
        assert_eq!(s.peek("c3", 4), TakeOutcome::Taken);
        assert_eq!(s.counters.rejected, 0, "peek counts nothing");
        assert_eq!(take(&mut s, "c3", 3, 0), TakeOutcome::AtLimit);
        assert_eq!(take(&mut s, "c4", 3, 0), TakeOutcome::AtLimit);
        assert_eq!(s.active(), 3);
        assert!(!s.holds("c3"));
        assert_eq!(s.counters, Counters { taken: 3, rejected: 2, ..Counters::default() });
        // a higher limit admits again, a lower one admits nothing but evicts nobody
        assert_eq!(take(&mut s, "c3", 4, 0), TakeOutcome::Taken);
        assert_eq!(take(&mut s, "c5", 2, 0), TakeOutcome::AtLimit);
        assert_eq!(s.active(), 4);

        let mut z = LeaseSet::default();
        for i in 0..5 {
            assert_eq!(take(&mut z, &format!("z{i}"), 0, i), TakeOutcome::AtLimit);
        }
        assert_eq!(z.active(), 0);
        assert_eq!(z.counters, Counters { rejected: 5, ..Counters::default() });
        assert_eq!(z.next_deadline(), None);
    }

    #[test]
    fn same_call_id_never_takes_two_slots() {
        let mut s = LeaseSet::default();
        assert_eq!(take(&mut s, "dup", 2, 1_000), TakeOutcome::Taken);
        // INVITE retransmission, then a re-route attempt, a bit later
        assert_eq!(take(&mut s, "dup", 2, 1_500), TakeOutcome::AlreadyHeld);
        assert_eq!(take(&mut s, "dup", 2, 5_000), TakeOutcome::AlreadyHeld);
        assert_eq!(s.active(), 1);
        assert_eq!(s.counters, Counters { taken: 1, ..Counters::default() });
        // nothing about the lease changes
        assert_eq!((s.leases["dup"].taken_at_ms, s.leases["dup"].expires_at_ms), (1_000, 1_000 + TTL));
        // at the limit, the holder's retransmission is still AlreadyHeld, not AtLimit
        assert_eq!(take(&mut s, "other", 2, 6_000), TakeOutcome::Taken);
        assert_eq!(take(&mut s, "dup", 2, 6_000), TakeOutcome::AlreadyHeld);
        assert_eq!(s.counters.rejected, 0);
        // a late retransmission does not touch a confirmed call's lease
        assert!(s.confirm("dup", 7_000, 3_600_000));
        let before = s.clone();
        assert_eq!(s.take("dup", "outbound", "x", "y", 2, 8_000, 1), TakeOutcome::AlreadyHeld);
        assert_eq!(s, before);
    }

    #[test]
    fn duplicate_and_two_way_bye_release_once() {
        let mut s = LeaseSet::default();
        take(&mut s, "call-1", 5, 0);
        take(&mut s, "call-2", 5, 0);
        // both legs send BYE, and one of them is retransmitted
        let first = s.release("call-1");
        assert_eq!(first.map(|l| l.call_id), Some("call-1".to_string()));
        assert_eq!(s.release("call-1"), None);
        assert_eq!(s.release("call-1"), None);
        assert_eq!(s.active(), 1);
        assert_eq!(s.counters.released, 1);
        // unknown Call-ID: nothing happens
        assert_eq!(s.release("never-seen"), None);
        assert_eq!(s.counters.released, 1);
        // a late confirm of a released call does not resurrect it
        assert!(!s.confirm("call-1", 10, TTL));
        assert_eq!(s.active(), 1);
        // an expiry after the release does not count it again
        let call2 = s.leases["call-2"].clone();
        assert_eq!(s.expire(u64::MAX), vec![call2]);
        assert_eq!(s.counters, Counters { taken: 2, released: 1, expired: 1, ..Counters::default() });
        assert_eq!(s.active(), 0);
    }

    #[test]
    fn retake_after_release_is_a_new_lease() {
        let mut s = LeaseSet::default();
        assert_eq!(take(&mut s, "x", 1, 0), TakeOutcome::Taken);
        assert!(s.confirm("x", 100, 10 * TTL));
        assert!(s.release("x").unwrap().confirmed);
        assert_eq!(take(&mut s, "x", 1, 500), TakeOutcome::Taken);
        let l = &s.leases["x"];
        assert_eq!((l.taken_at_ms, l.expires_at_ms, l.confirmed), (500, 500 + TTL, false));
        assert_eq!(s.counters, Counters { taken: 2, released: 1, ..Counters::default() });
        // with limit 1, the slot freed by release is the only one
        assert_eq!(take(&mut s, "y", 1, 600), TakeOutcome::AtLimit);
        s.release("x");
        assert_eq!(take(&mut s, "y", 1, 700), TakeOutcome::Taken);
    }

    #[test]
    fn confirm_extends_ttl() {
        let mut s = LeaseSet::default();
        take(&mut s, "a", 5, 1_000); // rings until 61_000
        assert!(s.confirm("a", 20_000, 3_600_000));
        assert_eq!(s.leases["a"].expires_at_ms, 3_620_000);
        assert!(s.leases["a"].confirmed);
        assert!(s.expire(61_000).is_empty(), "the ringing deadline no longer applies");
        // a refresh sets the deadline to now+ttl
        assert!(s.confirm("a", 3_000_000, 3_600_000));
        assert_eq!(s.next_deadline(), Some(6_600_000));
        assert!(!s.confirm("nope", 0, 1));
        // saturating arithmetic at the end of time
        assert!(s.confirm("a", u64::MAX - 5, 100));
        assert_eq!(s.leases["a"].expires_at_ms, u64::MAX);
    }

    #[test]
    fn expiry_boundary_is_inclusive() {
        let mut s = LeaseSet::default();
        s.take("a", "inbound", "", "", 5, 1_000, 1_000); // expires 2_000
        s.take("b", "inbound", "", "", 5, 1_000, 1_001); // expires 2_001
        s.take("c", "inbound", "", "", 5, 1_000, 0); // expires 1_000: dead on arrival
        assert_eq!(s.next_deadline(), Some(1_000));
        assert_eq!(s.expire(999), vec![]);
        let gone: Vec<String> = s.expire(1_000).into_iter().map(|l| l.call_id).collect();
        assert_eq!(gone, vec!["c"]);
        assert_eq!(s.expire(1_999), vec![]);
        let gone: Vec<String> = s.expire(2_000).into_iter().map(|l| l.call_id).collect();
        assert_eq!(gone, vec!["a"]);
        assert_eq!(s.next_deadline(), Some(2_001));
        assert_eq!(s.expire(2_000), vec![], "expiring again changes nothing");
        assert_eq!(s.expire(5_000).len(), 1);
        assert_eq!(s.counters, Counters { taken: 3, expired: 3, ..Counters::default() });
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.release("a"), None, "an expired lease cannot be released again");
        assert_eq!(s.counters.released, 0);
    }

    #[test]
    fn reconcile_respects_grace() {
        let mut s = LeaseSet::default();
        take(&mut s, "live-old", 10, 0);
        take(&mut s, "dead-old", 10, 0);
        take(&mut s, "dead-at-grace", 10, 5_000);
        take(&mut s, "dead-young", 10, 9_000);
        take(&mut s, "dead-future", 10, 20_000); // clock skew: taken "after" now
        let live = vec!["live-old".to_string(), "not-ours".to_string()];
        let gone: Vec<String> = s.reconcile(&live, 10_000, 5_000).into_iter().map(|l| l.call_id).collect();
        assert_eq!(gone, vec!["dead-at-grace", "dead-old"]);
        let mut left: Vec<&str> = s.leases.keys().map(String::as_str).collect();
        left.sort();
        assert_eq!(left, vec!["dead-future", "dead-young", "live-old"]);
        assert_eq!(s.counters.reconciled, 2);
        // a Call-ID reported live that we never leased is not invented
        assert!(!s.holds("not-ours"));
        // later, with the young one past grace, and nothing live at all
        let gone = s.reconcile(&[], 30_000, 5_000);
        assert_eq!(gone.len(), 3);
        assert_eq!(s.active(), 0);
        assert_eq!(s.counters, Counters { taken: 5, reconciled: 5, ..Counters::default() });
        // grace 0: everything not live goes, even if taken right now
        take(&mut s, "now", 10, 40_000);
        assert_eq!(s.reconcile(&[], 40_000, 0).len(), 1);
        // a released lease is not reconciled again
        take(&mut s, "r", 10, 0);
        s.release("r");
        assert!(s.reconcile(&[], 100_000, 0).is_empty());
        assert_eq!(s.counters.reconciled, 6);
        assert_eq!(s.counters.released, 1);
    }

    #[test]
    fn a_node_reconciles_only_the_leases_pinned_to_it() {
        let mut s = LeaseSet::default();
        for id in ["on-a", "on-b", "trunk"] {
            take(&mut s, id, 10, 0);
        }
        s.leases.get_mut("on-a").unwrap().node = Some("fs-a".into());
        s.leases.get_mut("on-b").unwrap().node = Some("fs-b".into());
        // fs-a reports nothing live: only its own call goes.
        let gone = s.reconcile_node(Some("fs-a"), &[], 100, 0);
        assert_eq!(gone.iter().map(|l| l.call_id.as_str()).collect::<Vec<_>>(), vec!["on-a"]);
        assert!(s.holds("on-b") && s.holds("trunk"));
        // The SIP edge sees every call: it judges them all.
        let gone = s.reconcile_node(None, &["on-b".to_string()], 100, 0);
        assert_eq!(gone.iter().map(|l| l.call_id.as_str()).collect::<Vec<_>>(), vec!["trunk"]);
        assert_eq!(s.counters.reconciled, 2);
    }

    #[test]
    fn leases_stored_with_the_old_field_names_still_load() {
        let old = r#"{"call_id":"c1","taken_at_ms":1,"expires_at_ms":2,"confirmed":false,"direction":"outbound","from":"a","to":"b"}"#;
        let l: Lease = serde_json::from_str(old).unwrap();
        assert_eq!((l.call_id.as_str(), l.taken_at_ms, l.expires_at_ms, l.node), ("c1", 1, 2, None));
    }

    #[test]
    fn clear_drops_everything() {
        let mut s = LeaseSet::default();
        for i in 0..4 {
            take(&mut s, &format!("c{i}"), 10, i);
        }
        let before = s.counters.clone();
        assert_eq!(s.clear(), 4);
        assert_eq!(s.active(), 0);
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.counters, Counters { cleared: 4, ..before.clone() }, "clear counts what it dropped, nothing else");
        assert_eq!(s.clear(), 0);
        assert_eq!(s.counters.cleared, 4, "an empty clear counts nothing");
        assert_eq!(s.release("c0"), None);
        assert_eq!(take(&mut s, "c0", 1, 10), TakeOutcome::Taken);
    }

    #[test]
    fn serde_round_trip() {
        let mut s = LeaseSet::default();
        take(&mut s, "a", 5, 1);
        s.confirm("a", 2, 3);
        take(&mut s, "b", 1, 4);
        let json = serde_json::to_string(&s).unwrap();
        let back: LeaseSet = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
        let empty: LeaseSet = serde_json::from_str(r#"{"leases":{},"counters":{"taken":0,"released":0,"expired":0,"reconciled":0,"rejected":0}}"#).unwrap();
        assert_eq!(empty, LeaseSet::default());
        assert_eq!(serde_json::to_string(&TakeOutcome::AtLimit).unwrap(), "\"at_limit\"");
        assert_eq!(serde_json::to_string(&TakeOutcome::AlreadyHeld).unwrap(), "\"already_held\"");
    }

    /// splitmix64: tiny deterministic PRNG for the property test.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// Reference model: the obvious list-based implementation, to compare outcomes with.
    #[derive(Default)]
    struct Model {
        /// (call_id, taken_at, expires_at)
        leases: Vec<(String, u64, u64)>,
    }

    #[test]
    fn randomized_interleavings_keep_invariants() {
        const IDS: usize = 12;
        for seed in 1..=200u64 {
            let mut rng = Rng(seed);
            let limit = rng.below(6) as u32; // 0..=5, 0 included
            let mut set = LeaseSet::default();
            let mut model = Model::default();
            let mut cleared = 0u64;
            let mut now = 1_000u64;
            for step in 0..400 {
                now += rng.below(3_000);
                let id = format!("call-{}@10.0.0.{}", rng.below(IDS as u64), seed % 7);
                let ctx = format!("seed {seed} step {step} limit {limit}");
                match rng.below(100) {
                    0..=39 => {
                        let ttl = rng.below(20_000);
                        let peeked = set.peek(&id, limit);
                        let got = set.take(&id, "inbound", "a", "b", limit, now, ttl);
                        assert_eq!(peeked, got, "{ctx}: peek agrees with take");
                        let expected = if model.leases.iter().any(|m| m.0 == id) {
                            TakeOutcome::AlreadyHeld
                        } else if model.leases.len() >= limit as usize {
                            TakeOutcome::AtLimit
                        } else {
                            model.leases.push((id.clone(), now, now + ttl));
                            TakeOutcome::Taken
                        };
                        assert_eq!(got, expected, "{ctx}: take {id}");
                    }
                    40..=54 => {
                        let ttl = rng.below(60_000);
                        let got = set.confirm(&id, now, ttl);
                        let m = model.leases.iter_mut().find(|m| m.0 == id);
                        assert_eq!(got, m.is_some(), "{ctx}: confirm {id}");
                        if let Some(m) = m {
                            m.2 = now + ttl;
                            assert!(set.leases[&id].confirmed);
                        }
                    }
                    55..=74 => {
                        // BYE, sometimes from both sides
                        let times = 1 + rng.below(2);
                        for k in 0..times {
                            let got = set.release(&id);
                            let pos = model.leases.iter().position(|m| m.0 == id);
                            assert_eq!(got.is_some(), pos.is_some(), "{ctx}: release #{k} {id}");
                            if let Some(p) = pos {
                                model.leases.remove(p);
                            }
                        }
                    }
                    75..=89 => {
                        let got = set.expire(now);
                        let mut expected: Vec<String> = model.leases.iter().filter(|m| m.2 <= now).map(|m| m.0.clone()).collect();
                        model.leases.retain(|m| m.2 > now);
                        expected.sort();
                        let got: Vec<String> = got.into_iter().map(|l| l.call_id).collect();
                        assert_eq!(got, expected, "{ctx}: expire");
                    }
                    90..=98 => {
                        let live: Vec<String> = (0..IDS).filter(|_| rng.below(2) == 0).map(|i| format!("call-{i}@10.0.0.{}", seed % 7)).collect();
                        let grace = rng.below(10_000);
                        let got = set.reconcile(&live, now, grace);
                        let mut expected: Vec<String> =
                            model.leases.iter().filter(|m| !live.contains(&m.0) && now - m.1 >= grace).map(|m| m.0.clone()).collect();
                        model.leases.retain(|m| live.contains(&m.0) || now - m.1 < grace);
                        expected.sort();
                        let got: Vec<String> = got.into_iter().map(|l| l.call_id).collect();
                        assert_eq!(got, expected, "{ctx}: reconcile");
                    }
                    _ => {
                        let n = set.clear();
                        assert_eq!(n, model.leases.len(), "{ctx}: clear");
                        model.leases.clear();
                        cleared += n as u64;
                    }
                }

                // invariants after every step
                let c = &set.counters;
                assert_eq!(set.active(), set.leases.len(), "{ctx}");
                assert!(set.active() <= limit as usize, "{ctx}: active {} > limit", set.active());
                assert_eq!(c.cleared, cleared, "{ctx}: the cleared counter matches what clear returned");
                assert_eq!(c.taken - c.released - c.expired - c.reconciled - c.cleared, set.active() as u64, "{ctx}: {c:?} cleared {cleared}");
                for (key, lease) in &set.leases {
                    assert_eq!(key, &lease.call_id, "{ctx}: key/Call-ID mismatch");
                    assert!(lease.expires_at_ms >= lease.taken_at_ms, "{ctx}");
                }
                let mut ids: Vec<&str> = set.leases.values().map(|l| l.call_id.as_str()).collect();
                ids.sort();
                ids.dedup();
                assert_eq!(ids.len(), set.leases.len(), "{ctx}: a Call-ID twice");
                // same content as the model, and the same deadline
                let mut model_ids: Vec<&str> = model.leases.iter().map(|m| m.0.as_str()).collect();
                model_ids.sort();
                assert_eq!(ids, model_ids, "{ctx}");
                for m in &model.leases {
                    let l = &set.leases[&m.0];
                    assert_eq!((l.taken_at_ms, l.expires_at_ms), (m.1, m.2), "{ctx}: {}", m.0);
                }
                assert_eq!(set.next_deadline(), model.leases.iter().map(|m| m.2).min(), "{ctx}");
            }
        }
    }
}
